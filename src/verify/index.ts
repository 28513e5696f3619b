export { checkSignerChain, MAX_CHAIN_CERTIFICATES } from './cert-chain.js';
export { keyFingerprint, shortFingerprint } from './fingerprint.js';
export { hashFile } from './hash-thread.js';
export { algorithmOf, algorithmsOf, digestOf, type SignatureAlgorithm } from './key-kind.js';
export { parsePem } from './pem.js';
export { isDerEcdsaSignature, verifySignature, verifyWithKey } from './signature.js';
export {
  type DeniedEntry,
  parseDenyList,
  type TrustEntry,
  type TrustedKey,
  type TrustedRoot,
  TrustStore,
} from './trust-store.js';
export {
  DEFAULT_TRUST_BUDGET_MS,
  entryDigests,
  type SignerInfo,
  type VerifiedEntry,
  type VerifiedPackage,
  type VerifyOptions,
  verifyPackage,
} from './verify-package.js';
