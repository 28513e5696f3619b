/**
 * Every failure hotocr reports carries a stable `code` (documented in docs/PACKAGE-FORMAT.md
 * and docs/ERRORS.md), a sentence a person can act on, and the underlying `cause`.
 * Only `src/server/` turns these into HTTP status codes.
 */
export class HotocrError extends Error {
  readonly code: string;
  /** Extra facts for logs and JSON output (entry names, limits, fingerprints...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Reason codes a package can be refused with; stable, scripted against by operators. */
export const REJECTION_CODES = [
  'ARCHIVE_INVALID',
  'ARCHIVE_TOO_LARGE',
  'PATH_UNSAFE',
  'ENTRY_DUPLICATE',
  'CHECKSUM_MISSING',
  'CHECKSUM_INVALID',
  'CHECKSUM_UNLISTED_ENTRY',
  'CHECKSUM_MISSING_ENTRY',
  'CHECKSUM_MISMATCH',
  'SIGNATURE_MISSING',
  'SIGNATURE_INVALID',
  'KEY_UNTRUSTED',
  'CERT_CHAIN_INVALID',
  'CERT_EXPIRED',
  'LEGACY_SIGNATURE_REFUSED',
  'VERIFY_TIMEOUT',
  'CONFIG_INVALID',
  'PACKAGE_EXPIRED',
  'VERSION_DOWNGRADE',
  'GRAPH_INVALID',
  'GRAPH_INCOMPATIBLE',
  'LOADER_NOT_FOUND',
  'WARMUP_FAILED',
] as const;

export type RejectionCode = (typeof REJECTION_CODES)[number];

/** A package was refused: it is never loaded, and the version in service is untouched. */
export class PackageRejectedError extends HotocrError {
  declare readonly code: RejectionCode;

  constructor(
    code: RejectionCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
  }
}

/** The trust store (public keys and pinned roots) could not be read. An operator error. */
export class TrustStoreError extends HotocrError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('TRUST_STORE_INVALID', message, options);
  }
}

/** An image could not be used for OCR: not an image, an unsupported format, too large or too small. */
export class ImageError extends HotocrError {
  constructor(
    code: 'IMAGE_INVALID' | 'IMAGE_UNSUPPORTED' | 'IMAGE_TOO_LARGE' | 'IMAGE_TOO_SMALL',
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
  }
}

/** Inference itself failed (onnxruntime raised, or a graph returned what its role forbids). */
export class InferenceError extends HotocrError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('INFERENCE_FAILED', message, options);
  }
}

/** Building or signing a package failed (`hotocr pack`, `hotocr keygen`). */
export class PackError extends HotocrError {}

export function isRejection(error: unknown): error is PackageRejectedError {
  return error instanceof PackageRejectedError;
}
