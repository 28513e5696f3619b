import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, HotocrError, REJECTION_CODES, type RejectionCode } from '../errors.js';

/**
 * The HTTP status of every code (a new code without one does not compile). A package refused
 * is 422 (409 for a version conflict); the operator's own configuration, when a request finds
 * it wrong, is the server's fault (500); an OCI registry that fails the server is a 502.
 */
export const STATUS: Record<ErrorCode, number> = {
  // A package refused by verification, or whose graphs failed to load or warm up.
  ...(Object.fromEntries(REJECTION_CODES.map((code) => [code, 422])) as Record<RejectionCode, number>),
  VERSION_DOWNGRADE: 409,
  VERIFY_TIMEOUT: 422,
  LOAD_FAILED: 422,
  VERSION_EXISTS: 409,
  REGISTRY_CLOSED: 503,
  STORAGE_FULL: 507,
  IMAGE_INVALID: 400,
  IMAGE_TOO_SMALL: 400,
  IMAGE_UNSUPPORTED: 415,
  IMAGE_TOO_LARGE: 413,
  INFERENCE_FAILED: 500,
  DOCUMENT_INVALID: 400,
  DOCUMENT_ENCRYPTED: 422,
  DOCUMENT_TOO_LARGE: 413,
  PAGE_TOO_LARGE: 413,
  PAGE_RENDER_FAILED: 422,
  PAGES_INVALID: 400,
  BODY_MISSING: 400,
  BODY_TOO_LARGE: 413,
  // The client went away; nobody reads this answer (nginx's code for it).
  REQUEST_ABORTED: 499,
  BODY_TIMEOUT: 408,
  PACKAGE_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  REQUEST_INVALID: 400,
  UPLOAD_FAILED: 500,
  UPGRADE_REQUIRED: 426,
  NOT_FOUND: 404,
  BAD_REQUEST: 400,
  INTERNAL: 500,
  NOT_READY: 503,
  OVERLOADED: 503,
  RENDERER_UNAVAILABLE: 503,
  TIMEOUT: 503,
  MODEL_NOT_FOUND: 404,
  MODEL_NAME_MISMATCH: 422,
  MODEL_LIMIT: 409,
  MODEL_REQUIRED: 400,
  VERSION_NOT_FOUND: 404,
  VERSION_NOT_READY: 409,
  VERSION_ACTIVE: 409,
  NO_PREVIOUS_VERSION: 409,
  NO_TRUSTED_VERSION: 409,
  ROUTING_INVALID: 400,
  PINNING_DISABLED: 403,
  PROFILE_BUSY: 409,
  UNAUTHORIZED: 401,
  ADMIN_TOKEN_INVALID: 403,
  ADMIN_DISABLED: 403,
  WEBHOOK_DISABLED: 403,
  WEBHOOK_SECRET_INVALID: 403,
  REFERENCE_INVALID: 400,
  REGISTRY_ERROR: 502,
  REGISTRY_AUTH: 502,
  REGISTRY_UNREACHABLE: 502,
  ARTIFACT_INVALID: 502,
  ARTIFACT_NOT_FOUND: 404,
  SETTING_INVALID: 500,
  TRUST_STORE_INVALID: 500,
  STATE_INVALID: 500,
  STATE_WRITE_FAILED: 500,
  LOADER_INVALID: 500,
  KEY_INVALID: 400,
  KEY_EXISTS: 409,
  KEY_TYPE_INVALID: 400,
  PACK_SOURCE_INVALID: 400,
  CERT_INVALID: 400,
  PACK_SELF_CHECK_FAILED: 500,
  SIGNATURE_FORMAT_INVALID: 400,
  SIGN_COMMAND_FAILED: 502,
  SIGN_COMMAND_EMPTY: 502,
  PKCS11_UNAVAILABLE: 500,
  PKCS11_MODULE_INVALID: 500,
  PKCS11_TOKEN_NOT_FOUND: 500,
  PKCS11_KEY_NOT_FOUND: 500,
  PKCS11_PIN_INCORRECT: 500,
  PKCS11_LOGIN_FAILED: 500,
  PKCS11_SIGN_FAILED: 502,
  PKCS11_FAILED: 500,
  USAGE: 400,
};

const FASTIFY: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'BODY_TOO_LARGE', message: 'The request body is over the size limit.' },
  FST_REQ_FILE_TOO_LARGE: { code: 'BODY_TOO_LARGE', message: 'The uploaded file is over the size limit.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message:
      'This Content-Type is not accepted here: images and PDFs go to POST /v1/ocr as image/png, image/jpeg, image/webp, image/tiff, application/pdf or multipart; packages to POST /v1/models as application/zip or multipart; other bodies are JSON.',
  },
  FST_INVALID_MULTIPART_CONTENT_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'The body is not multipart/form-data.',
  },
  FST_FILES_LIMIT: { code: 'REQUEST_INVALID', message: 'Send one file per request.' },
  FST_PARTS_LIMIT: { code: 'REQUEST_INVALID', message: 'The multipart body has too many parts.' },
  FST_FIELDS_LIMIT: { code: 'REQUEST_INVALID', message: 'The multipart body has too many fields.' },
  FST_ERR_BAD_URL: { code: 'REQUEST_INVALID', message: 'The URL holds an invalid percent-encoding.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'BODY_MISSING', message: 'The JSON body is empty.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'REQUEST_INVALID',
    message: 'Content-Length does not match the body.',
  },
};

/**
 * Refusals by design, not faults: shedding load and not being ready yet. They are in the
 * request log (with their status) and the metrics; logging each as an error would make a
 * flood cost the server a stack trace per refused request.
 */
const SHED: ReadonlySet<string> = new Set(['OVERLOADED', 'NOT_READY']);

/** The one place errors become HTTP responses: `{error: {code, message}}` with a fitting status. */
export function errorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error instanceof HotocrError) {
    const status = STATUS[error.code];
    if (status >= 500 && !SHED.has(error.code)) request.log.error({ err: error }, 'request failed');
    void reply.status(status).send({ error: { code: error.code, message: error.message } });
    return;
  }
  const known = 'code' in error && typeof error.code === 'string' ? FASTIFY[error.code] : undefined;
  if (known) {
    void reply.status(STATUS[known.code]).send({ error: known });
    return;
  }
  if ('validation' in error && error.validation) {
    void reply.status(400).send({ error: { code: 'REQUEST_INVALID', message: `The ${error.message}.` } });
    return;
  }
  const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  void reply.status(status).send({
    error: {
      code: status >= 500 ? 'INTERNAL' : 'BAD_REQUEST',
      message: status >= 500 ? 'Internal error.' : error.message,
    },
  });
}
