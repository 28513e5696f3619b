export { keyFingerprint, shortFingerprint } from './fingerprint.js';
export { hashFile } from './hash-thread.js';
export { algorithmOf, type SignatureAlgorithm } from './key-kind.js';
export { parsePem } from './pem.js';
export { isDerEcdsaSignature, verifySignature } from './signature.js';
export { type TrustedKey, type TrustedRoot, TrustStore } from './trust-store.js';
export {
  entryDigests,
  type SignerInfo,
  type VerifiedEntry,
  type VerifiedPackage,
  type VerifyOptions,
  verifyPackage,
} from './verify-package.js';
