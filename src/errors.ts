/** Details every error carries for logs and JSON output (entry names, limits, fingerprints...). */
type ErrorOptions = { cause?: unknown; details?: Record<string, unknown> };

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
  // OpenSSF Model Signing (model.sig) models.
  'OMS_BUNDLE_INVALID',
  'OMS_STATEMENT_INVALID',
  'OMS_UNSUPPORTED',
  'IDENTITY_MISMATCH',
  'TLOG_INVALID',
  'MODEL_UNREADABLE',
  'MODEL_NOT_FLAT',
] as const;

export type RejectionCode = (typeof REJECTION_CODES)[number];

/**
 * Every code hotocr reports, closed: a code not listed here does not compile, and each has an
 * HTTP status (src/server/errors.ts) and a row in docs/ERRORS.md (a test checks both).
 * Stable: operators script against them.
 */
export const ERROR_CODES = [
  ...REJECTION_CODES,
  // Taking a package in, after it verified.
  'LOAD_FAILED',
  'VERSION_EXISTS',
  'MODEL_NAME_MISMATCH',
  'MODEL_LIMIT',
  'REGISTRY_CLOSED',
  'STORAGE_FULL',
  // Images and OCR.
  'IMAGE_INVALID',
  'IMAGE_UNSUPPORTED',
  'IMAGE_TOO_LARGE',
  'IMAGE_TOO_SMALL',
  'INFERENCE_FAILED',
  // Documents: PDFs and multi-page TIFFs.
  'DOCUMENT_INVALID',
  'DOCUMENT_ENCRYPTED',
  'DOCUMENT_TOO_LARGE',
  'PAGE_TOO_LARGE',
  'PAGE_RENDER_FAILED',
  'PAGES_INVALID',
  'RENDERER_UNAVAILABLE',
  // Requests.
  'BODY_MISSING',
  'BODY_TOO_LARGE',
  'BODY_TIMEOUT',
  'PACKAGE_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'REQUEST_INVALID',
  'REQUEST_ABORTED',
  'UPLOAD_FAILED',
  'UPGRADE_REQUIRED',
  'NOT_FOUND',
  'BAD_REQUEST',
  'INTERNAL',
  // Admission.
  'NOT_READY',
  'OVERLOADED',
  'TIMEOUT',
  // Management: versions and routing.
  'MODEL_NOT_FOUND',
  'MODEL_REQUIRED',
  'VERSION_NOT_FOUND',
  'VERSION_NOT_READY',
  'VERSION_ACTIVE',
  'NO_PREVIOUS_VERSION',
  'NO_TRUSTED_VERSION',
  'ROUTING_INVALID',
  'PINNING_DISABLED',
  'PROFILE_BUSY',
  // Authentication.
  'UNAUTHORIZED',
  'ADMIN_TOKEN_INVALID',
  'ADMIN_DISABLED',
  'WEBHOOK_DISABLED',
  'WEBHOOK_SECRET_INVALID',
  // OCI registries.
  'REFERENCE_INVALID',
  'REGISTRY_ERROR',
  'REGISTRY_AUTH',
  'REGISTRY_UNREACHABLE',
  'ARTIFACT_INVALID',
  'ARTIFACT_NOT_FOUND',
  // The operator's own configuration.
  'SETTING_INVALID',
  'TRUST_STORE_INVALID',
  'STATE_INVALID',
  'STATE_WRITE_FAILED',
  'LOADER_INVALID',
  // Packing and keys (hotocr pack, keygen).
  'KEY_INVALID',
  'KEY_EXISTS',
  'KEY_TYPE_INVALID',
  'PACK_SOURCE_INVALID',
  'CERT_INVALID',
  'PACK_SELF_CHECK_FAILED',
  'SIGNATURE_FORMAT_INVALID',
  'SIGN_COMMAND_FAILED',
  'SIGN_COMMAND_EMPTY',
  'PKCS11_UNAVAILABLE',
  'PKCS11_MODULE_INVALID',
  'PKCS11_TOKEN_NOT_FOUND',
  'PKCS11_KEY_NOT_FOUND',
  'PKCS11_PIN_INCORRECT',
  'PKCS11_LOGIN_FAILED',
  'PKCS11_SIGN_FAILED',
  'PKCS11_FAILED',
  // The command line.
  'USAGE',
] as const satisfies readonly string[];

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether a code that crossed a thread or process boundary as text is one of hotocr's. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

/**
 * Every failure hotocr reports carries a stable `code` (one of {@link ERROR_CODES}, each
 * described in docs/ERRORS.md), a sentence a person can act on, and the underlying `cause`.
 * Only `src/server/` turns these into HTTP status codes.
 */
export class HotocrError extends Error {
  readonly code: ErrorCode;
  /** Extra facts for logs and JSON output (entry names, limits, fingerprints...). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** The message of whatever was thrown: an Error's, or the value itself as text. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  )
    return (error as { message: string }).message;
  return String(error);
}

/** The errno-style code of a system error (ENOENT, ENOSPC...), if it has one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A package was refused: it is never loaded, and the version in service is untouched. */
export class PackageRejectedError extends HotocrError {
  declare readonly code: RejectionCode;

  constructor(code: RejectionCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The trust store (public keys and pinned roots) could not be read. An operator error. */
export class TrustStoreError extends HotocrError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('TRUST_STORE_INVALID', message, options);
  }
}

/** An image could not be used for OCR: not an image, an unsupported format, too large or too small. */
export class ImageError extends HotocrError {
  constructor(
    code: 'IMAGE_INVALID' | 'IMAGE_UNSUPPORTED' | 'IMAGE_TOO_LARGE' | 'IMAGE_TOO_SMALL',
    message: string,
    options: ErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** A document (PDF or multi-page TIFF) that cannot be read: not one, encrypted, over a limit, a page that fails. */
export class DocumentError extends HotocrError {
  constructor(
    code:
      | 'DOCUMENT_INVALID'
      | 'DOCUMENT_ENCRYPTED'
      | 'DOCUMENT_TOO_LARGE'
      | 'PAGE_TOO_LARGE'
      | 'PAGE_RENDER_FAILED'
      | 'PAGES_INVALID',
    message: string,
    options: ErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** Inference itself failed (onnxruntime raised, or a graph returned what its role forbids). */
export class InferenceError extends HotocrError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('INFERENCE_FAILED', message, options);
  }
}

/** Building or signing a package failed (`hotocr pack`, `hotocr keygen`). */
export class PackError extends HotocrError {}

export function isRejection(error: unknown): error is PackageRejectedError {
  return error instanceof PackageRejectedError;
}
