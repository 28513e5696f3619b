import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const ROOT = tmpdir();

/** A fresh folder (outside any isolated TMPDIR) removed when the test file ends. */
export function tempDir(prefix = 'hotocr-test-'): string {
  const dir = mkdtempSync(join(ROOT, prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Points this process's temporary folder (os.tmpdir(), TMPDIR) at an empty folder of its own,
 * so a test can assert that the code under test left nothing behind in it.
 */
export function isolatedTmp(): { readonly dir: string; leftovers(): string[] } {
  const dir = mkdtempSync(join(ROOT, 'hotocr-tmpdir-'));
  process.env.TMPDIR = dir;
  after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, leftovers: () => readdirSync(dir) };
}
