import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HotocrError } from '../errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The admin check: a bearer token compared in constant time (both sides hashed first, so
 * neither the length nor a common prefix leaks through timing). With no token configured
 * every admin call is refused: the management API is never open by default.
 */
export function adminGuard(token: string | undefined): (request: FastifyRequest) => Promise<void> {
  const expected = token === undefined ? undefined : digest(token);
  return async (request) => {
    if (!expected)
      throw new HotocrError(
        'ADMIN_DISABLED',
        'Admin calls are refused because no admin token is configured; start the server with --admin-token-file FILE or HOTOCR_ADMIN_TOKEN (make one with: openssl rand -hex 32).',
      );
    const header = request.headers.authorization;
    if (!header)
      throw new HotocrError(
        'UNAUTHORIZED',
        'This is an admin call: send Authorization: Bearer <admin token>.',
      );
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match)
      throw new HotocrError('UNAUTHORIZED', 'Send the admin token as Authorization: Bearer <admin token>.');
    if (!timingSafeEqual(digest(match[1]!), expected))
      throw new HotocrError('ADMIN_TOKEN_INVALID', 'The admin token is wrong.');
  };
}
