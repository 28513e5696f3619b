import assert from 'node:assert/strict';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { PackageRejectedError } from '../src/errors.js';
import { FolderSource } from '../src/sources/index.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A folder source whose submit records what it was handed (and refuses what `refuse` says). */
async function watched(name: string, refuse: (bytes: Buffer) => boolean = () => false, quarantine?: string) {
  const dir = join(work, name);
  const handed: { path: string; bytes: Buffer; at: number }[] = [];
  const source = await FolderSource.create({
    dir,
    settleMs: 300,
    rescanMs: 200,
    ...(quarantine ? { quarantine } : {}),
    submit: async (path) => {
      const bytes = await readFile(path);
      handed.push({ path, bytes, at: performance.now() });
      if (refuse(bytes)) throw new PackageRejectedError('ARCHIVE_INVALID', 'The file is truncated.');
    },
  });
  after(() => source.close());
  return { dir, handed, source };
}

describe('the watched folder', () => {
  test('hands over a file renamed in at once, without waiting for it to settle', async () => {
    const { dir, handed } = await watched('renamed');
    const tmp = join(work, 'staging.zip');
    await writeFile(tmp, 'complete package bytes');
    const t = performance.now();
    await rename(tmp, join(dir, 'pkg-1.zip'));
    await until(() => handed.length === 1, 'a file handed over', 5000);
    const seenAfter = handed[0]!.at - t;
    assert.ok(seenAfter < 250, `seen after ${seenAfter.toFixed(0)} ms (settle time is 300)`);
    assert.equal(handed[0]!.bytes.toString(), 'complete package bytes');
  });

  test('hands over a file written slowly in chunks once, after it is complete', async () => {
    const { dir, handed } = await watched('slow');
    const file = await open(join(dir, 'slow.zip'), 'w');
    for (let i = 0; i < 6; i++) {
      await file.write(`chunk ${i};`);
      await sleep(120);
    }
    await file.close();
    await until(() => handed.length >= 1, 'a file handed over', 5000);
    await sleep(700);
    assert.equal(handed.length, 1);
    assert.equal(handed[0]!.bytes.toString(), 'chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;chunk 5;');
  });

  test('refuses a truncated file once, and looks again only when it changes', async () => {
    const { dir, handed } = await watched('truncated', (b) => !b.toString().endsWith('END'));
    await writeFile(join(dir, 'cut.zip'), 'half a package');
    await until(() => handed.length === 1, 'a file handed over', 5000);
    await sleep(800);
    assert.equal(handed.length, 1, 'not retried while unchanged');
    await writeFile(join(dir, 'cut.zip'), 'the whole package END');
    await until(() => handed.length === 2, 'a second file handed over', 5000);
    assert.equal(handed[1]!.bytes.toString(), 'the whole package END');
  });

  test('picks up packages already there at start, and ignores other files', async () => {
    const dir = join(work, 'existing');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'old.zip'), 'was here first');
    await writeFile(join(dir, 'notes.txt'), 'not a package');
    await writeFile(join(dir, '.partial.zip'), 'hidden: an upload in progress');
    const { handed } = await watched('existing');
    await until(() => handed.length === 1, 'a file handed over', 5000);
    await sleep(500);
    assert.deepEqual(
      handed.map((h) => h.path),
      [join(dir, 'old.zip')],
    );
  });

  test('moves a refused package to quarantine with a .reason.json beside it', async () => {
    const quarantine = join(work, 'quarantine');
    const { dir, handed } = await watched('bad', () => true, quarantine);
    await writeFile(join(work, 'bad-staging.zip'), 'nope');
    await rename(join(work, 'bad-staging.zip'), join(dir, 'bad.zip'));
    await until(() => handed.length === 1, 'a file handed over', 5000);
    await sleep(200);
    const names = await readdir(quarantine);
    const zip = names.find((n) => n.endsWith('bad.zip'));
    assert.ok(zip, `quarantine holds ${names.join(', ')}`);
    const reason = JSON.parse(await readFile(join(quarantine, `${zip}.reason.json`), 'utf8'));
    assert.equal(reason.code, 'ARCHIVE_INVALID');
    assert.deepEqual(await readdir(dir), []);
  });

  test('keeps watching a folder that is deleted and created again', async () => {
    const { dir, handed } = await watched('recreated');
    await rm(dir, { recursive: true });
    await sleep(400);
    await mkdir(dir, { recursive: true });
    await sleep(400);
    await writeFile(join(work, 'again.zip'), 'after the folder came back');
    await rename(join(work, 'again.zip'), join(dir, 'again.zip'));
    await until(() => handed.length === 1, 'a file handed over', 5000);
    assert.equal(handed[0]!.bytes.toString(), 'after the folder came back');
  });
});
