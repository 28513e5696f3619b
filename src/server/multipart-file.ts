import type { MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { HotocrError, messageOf } from '../errors.js';

/**
 * A multipart body the parser cannot read (no boundary, a malformed part header, cut short)
 * is the client's mistake: 400 REQUEST_INVALID, not a 500. Our own and fastify's coded
 * errors pass through.
 */
export function multipartError(error: unknown): unknown {
  if (error instanceof HotocrError) return error;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error;
  return new HotocrError('REQUEST_INVALID', `The multipart body cannot be read: ${messageOf(error)}.`, {
    cause: error,
  });
}

/** The file part of a multipart request; BODY_MISSING when there is none. */
export async function multipartFile(request: FastifyRequest, what: string): Promise<MultipartFile> {
  let part: MultipartFile | undefined;
  try {
    part = await request.file();
  } catch (error) {
    throw multipartError(error);
  }
  if (!part)
    throw new HotocrError(
      'BODY_MISSING',
      `The multipart body has no file; send the ${what} as a file field.`,
    );
  return part;
}
