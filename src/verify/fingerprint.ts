import { createHash, type KeyObject } from 'node:crypto';

/** SHA-256 over the DER SubjectPublicKeyInfo, in lowercase hex: the key's stable identity. */
export function keyFingerprint(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** The short form people read in logs and on the dashboard: `SHA256:` and the first 16 hex digits. */
export function shortFingerprint(hex: string): string {
  return `SHA256:${hex.slice(0, 16)}`;
}
