import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import { until } from '../../test/helpers/until.js';
import { PackageRejectedError } from '../errors.js';
import { FolderSource } from './folder-source.js';

const work = tempDir();

/** A folder source whose submit records what it was handed (and refuses what `refuse` says). */
async function watched(
  name: string,
  options: { settleMs: number; refuse?: (bytes: Buffer) => boolean; quarantine?: string },
) {
  const dir = join(work, name);
  const handed: { path: string; bytes: Buffer }[] = [];
  const source = await FolderSource.create({
    dir,
    settleMs: options.settleMs,
    // Rescans are asked for with scan() where a test needs one.
    rescanMs: 3_600_000,
    ...(options.quarantine ? { quarantine: options.quarantine } : {}),
    submit: async (path) => {
      const bytes = await readFile(path);
      handed.push({ path, bytes });
      if (options.refuse?.(bytes))
        throw new PackageRejectedError('ARCHIVE_INVALID', 'The file is truncated.');
    },
  });
  after(() => source.close());
  return { dir, handed, source };
}

describe('the watched folder', () => {
  test('hands over a file renamed in without waiting for it to settle', async () => {
    // A settle time no test waits out: only the rename path can hand the file over.
    const { dir, handed } = await watched('renamed', { settleMs: 3_600_000 });
    const tmp = join(work, 'staging.zip');
    await writeFile(tmp, 'complete package bytes');
    await rename(tmp, join(dir, 'pkg-1.zip'));
    await until(() => handed.length === 1, 'a file handed over');
    assert.equal(handed[0]!.bytes.toString(), 'complete package bytes');
  });

  test('hands over a file written slowly in chunks once, after it is complete', async () => {
    const { dir, handed, source } = await watched('slow', { settleMs: 1500 });
    const file = await open(join(dir, 'slow.zip'), 'w');
    // A writer pausing between chunks, each pause far shorter than the settle time.
    for (let i = 0; i < 6; i++) {
      await file.write(`chunk ${i};`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await file.close();
    await until(() => handed.length >= 1, 'a file handed over');
    await source.scan();
    await source.scan();
    assert.equal(handed.length, 1, 'looked at twice more, not handed over again');
    assert.equal(handed[0]!.bytes.toString(), 'chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;chunk 5;');
  });

  test('refuses a truncated file once, and looks again only when it changes', async () => {
    const { dir, handed, source } = await watched('truncated', {
      settleMs: 100,
      refuse: (b) => !b.toString().endsWith('END'),
    });
    await writeFile(join(dir, 'cut.zip'), 'half a package');
    await until(() => handed.length === 1, 'a file handed over');
    await source.scan();
    await source.scan();
    assert.equal(handed.length, 1, 'not retried while unchanged');
    await writeFile(join(dir, 'cut.zip'), 'the whole package END');
    await until(() => handed.length === 2, 'a second file handed over');
    assert.equal(handed[1]!.bytes.toString(), 'the whole package END');
  });

  test('picks up packages already there at start, and ignores other files', async () => {
    const dir = join(work, 'existing');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'old.zip'), 'was here first');
    await writeFile(join(dir, 'notes.txt'), 'not a package');
    await writeFile(join(dir, '.partial.zip'), 'hidden: an upload in progress');
    const { handed, source } = await watched('existing', { settleMs: 100 });
    await until(() => handed.length === 1, 'a file handed over');
    await source.scan();
    assert.deepEqual(
      handed.map((h) => h.path),
      [join(dir, 'old.zip')],
    );
  });

  test('moves a refused package to quarantine with a .reason.json beside it', async () => {
    const quarantine = join(work, 'quarantine');
    const { dir } = await watched('bad', { settleMs: 100, refuse: () => true, quarantine });
    await writeFile(join(work, 'bad-staging.zip'), 'nope');
    await rename(join(work, 'bad-staging.zip'), join(dir, 'bad.zip'));
    const reasonFile = () =>
      existsSync(quarantine)
        ? readdirSync(quarantine).find((n) => n.endsWith('bad.zip.reason.json'))
        : undefined;
    await until(() => reasonFile() !== undefined, 'the reason written beside the quarantined package');
    const reason = reasonFile()!;
    const names = await readdir(quarantine);
    assert.ok(
      names.some((n) => n.endsWith('bad.zip')),
      `quarantine holds ${names.join(', ')}`,
    );
    const written = JSON.parse(await readFile(join(quarantine, reason), 'utf8'));
    assert.equal(written.code, 'ARCHIVE_INVALID');
    assert.deepEqual(await readdir(dir), []);
  });

  test('keeps watching a folder that is deleted and created again', async () => {
    const { dir, handed, source } = await watched('recreated', { settleMs: 100 });
    await rm(dir, { recursive: true });
    // The next look at the folder (a rescan) finds it gone; the operator makes it again.
    await source.scan();
    await mkdir(dir, { recursive: true });
    await writeFile(join(work, 'again.zip'), 'after the folder came back');
    await rename(join(work, 'again.zip'), join(dir, 'again.zip'));
    await until(() => handed.length === 1, 'a file handed over');
    assert.equal(handed[0]!.bytes.toString(), 'after the folder came back');
  });
});
