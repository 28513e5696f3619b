export {
  BUNDLED_NAME,
  BUNDLED_VERSION,
  type BundledPackage,
  bundledAssets,
  bundledManifest,
  ensureBundledPackage,
  writeBundledSource,
} from './bundled.js';
export { type CommandSignerOptions, commandSigner } from './command-signer.js';
export { ecdsaRawToDer } from './ecdsa.js';
export { type KeygenOptions, type KeygenResult, type KeyType, keygen } from './keygen.js';
export { type PackFormat, type PackOptions, type PackProgress, type PackResult, pack } from './pack.js';
export { keyFileSigner, type PackageSigner } from './signer.js';
