export { checkSignerChain, MAX_CHAIN_CERTIFICATES } from './cert-chain.js';
export { keyFingerprint, shortFingerprint } from './fingerprint.js';
export { hashFile } from './hash-thread.js';
export { algorithmOf, algorithmsOf, digestOf, type SignatureAlgorithm } from './key-kind.js';
export { OMS_SIGNATURE_FILE, parseOmsBundle } from './oms-bundle.js';
export type { KeylessPolicy } from './oms-keyless.js';
export type { OmsModelFile } from './oms-model.js';
export { keyHint as omsKeyHint, type OmsAlgorithm, type OmsSigner, omsAlgorithmOf } from './oms-signer.js';
export { parseOmsStatement } from './oms-statement.js';
export { loadSigstoreTrustedRoot, type SigstoreTrustedRoot } from './oms-trusted-root.js';
export {
  type OmsForm,
  type OmsVerifyOptions,
  omsFormOf,
  type VerifiedOmsModel,
  verifyOmsModel,
} from './oms-verify.js';
export { parsePem } from './pem.js';
export { isDerEcdsaSignature, verifySignature, verifyWithKey } from './signature.js';
export { signerCertificate } from './signer-certificate.js';
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
