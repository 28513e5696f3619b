import { HotocrError } from '../errors.js';

/** Exit codes every hotocr command shares. */
export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

/** Prints `CODE: sentence` for a known failure (or the message of an unexpected one) to stderr. */
export function printError(error: unknown): void {
  if (error instanceof HotocrError) process.stderr.write(`${error.code}: ${error.message}\n`);
  else
    process.stderr.write(
      `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
