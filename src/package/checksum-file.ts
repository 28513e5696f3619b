import { PackageRejectedError } from '../errors.js';

export const CHECKSUM_FILE = 'checksum.sha256';
export const SIGNATURE_FILE = 'signature.sig';
export const SIGNER_FILE = 'signer.pem';
/** An OpenSSF Model Signing signature, carried by a ZIP in place of the two above. */
export const OMS_SIGNATURE_FILE = 'model.sig';
/** Entries the checksum list never names: itself and what signs it. */
export const UNLISTED_ENTRIES: ReadonlySet<string> = new Set([CHECKSUM_FILE, SIGNATURE_FILE, SIGNER_FILE]);

const LINE = /^([0-9a-f]{64}) [ *]([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/;

/**
 * Parses `sha256sum` output strictly: one `<64 lowercase hex> <space|*><name>` per LF-ended
 * line, no blank lines, no CR, no duplicate names. Returns name → hex digest, in file order.
 */
export function parseChecksumFile(bytes: Buffer): Map<string, string> {
  const fail = (message: string, line?: number): never => {
    throw new PackageRejectedError(
      'CHECKSUM_INVALID',
      `${CHECKSUM_FILE}${line ? ` line ${line}` : ''}: ${message}`,
      {
        details: line ? { line } : {},
      },
    );
  };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('is not UTF-8 text.');
  }
  if (text.length === 0) fail('is empty; it must list every file of the package.');
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  const digests = new Map<string, string>();
  lines.forEach((line, i) => {
    if (line.includes('\r')) fail('has a CR character; use LF line endings (sha256sum output as is).', i + 1);
    const match = LINE.exec(line);
    if (!match) {
      fail(
        `${JSON.stringify(line.slice(0, 100))} is not "<64 lowercase hex digits> <name>" as sha256sum prints it.`,
        i + 1,
      );
    }
    const [, digest, name] = match as unknown as [string, string, string];
    if (digests.has(name)) fail(`lists ${JSON.stringify(name)} twice.`, i + 1);
    digests.set(name, digest);
  });
  return digests;
}

/** Formats a checksum list exactly as `sha256sum` prints it (text mode, two spaces). */
export function formatChecksumFile(digests: Iterable<readonly [string, string]>): Buffer {
  let out = '';
  for (const [name, digest] of digests) out += `${digest}  ${name}\n`;
  return Buffer.from(out, 'utf8');
}
