import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HotocrError } from '../errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * A bearer check compared in constant time (both sides hashed first, so neither the length
 * nor a common prefix leaks through timing). With no token configured every call is refused.
 */
function bearerGuard(
  token: string | undefined,
  what: {
    label: string;
    disabled: () => HotocrError;
    invalidCode: 'ADMIN_TOKEN_INVALID' | 'WEBHOOK_SECRET_INVALID';
  },
): (request: FastifyRequest) => Promise<void> {
  const expected = token === undefined ? undefined : digest(token);
  return async (request) => {
    if (!expected) throw what.disabled();
    const header = request.headers.authorization;
    if (!header)
      throw new HotocrError('UNAUTHORIZED', `This call needs Authorization: Bearer <${what.label}>.`);
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match)
      throw new HotocrError(
        'UNAUTHORIZED',
        `Send the ${what.label} as Authorization: Bearer <${what.label}>.`,
      );
    if (!timingSafeEqual(digest(match[1]!), expected))
      throw new HotocrError(what.invalidCode, `The ${what.label} is wrong.`);
  };
}

/** The admin check: the management API is never open by default. */
export function adminGuard(token: string | undefined): (request: FastifyRequest) => Promise<void> {
  return bearerGuard(token, {
    label: 'admin token',
    invalidCode: 'ADMIN_TOKEN_INVALID',
    disabled: () =>
      new HotocrError(
        'ADMIN_DISABLED',
        'Admin calls are refused because no admin token is configured; start the server with --admin-token-file FILE or HOTOCR_ADMIN_TOKEN (make one with: openssl rand -hex 32).',
      ),
  });
}

/** The registry webhook's check: the shared secret the registry sends as a bearer token. */
export function webhookGuard(secret: string | undefined): (request: FastifyRequest) => Promise<void> {
  return bearerGuard(secret, {
    label: 'webhook secret',
    invalidCode: 'WEBHOOK_SECRET_INVALID',
    disabled: () =>
      new HotocrError(
        'WEBHOOK_DISABLED',
        'Registry notifications are refused because no webhook secret is configured; start the server with --registry and --registry-webhook-secret-file FILE.',
      ),
  });
}
