import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HotocrError } from '../errors.js';

/** HTTP status for each error code hotocr answers with; anything else is a 500. */
const STATUS: Record<string, number> = {
  IMAGE_INVALID: 400,
  IMAGE_TOO_SMALL: 400,
  IMAGE_UNSUPPORTED: 415,
  IMAGE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BODY_MISSING: 400,
  NOT_FOUND: 404,
  NOT_READY: 503,
  INFERENCE_FAILED: 500,
};

const FASTIFY: Record<string, { code: string; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'BODY_TOO_LARGE', message: 'The request body is over the size limit.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'Send the image as the body with Content-Type image/png, image/jpeg, image/webp or image/tiff.',
  },
};

/** The one place errors become HTTP responses: `{error: {code, message}}` with a fitting status. */
export function errorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error instanceof HotocrError) {
    const status = STATUS[error.code] ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.status(status).send({ error: { code: error.code, message: error.message } });
    return;
  }
  const known = 'code' in error && typeof error.code === 'string' ? FASTIFY[error.code] : undefined;
  if (known) {
    void reply.status(STATUS[known.code] ?? 400).send({ error: known });
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
