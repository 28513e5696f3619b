import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ManualClock, ManualWatcher } from '../../test/helpers/manual.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { until } from '../../test/helpers/until.js';
import { PackageRejectedError } from '../errors.js';
import { FolderSource } from './folder-source.js';

const work = tempDir();

/**
 * A folder source on a clock and a watcher the test moves (events sent as fs.watch would for
 * what the test did), whose submit records what it was handed and refuses what `refuse` says.
 */
async function watched(
  name: string,
  options: { settleMs: number; refuse?: (bytes: Buffer) => boolean; quarantine?: string },
) {
  const dir = join(work, name);
  const handed: { path: string; bytes: Buffer }[] = [];
  const clock = new ManualClock();
  const watcher = new ManualWatcher();
  const source = await FolderSource.create({
    dir,
    settleMs: options.settleMs,
    rescanMs: 3_600_000,
    clock,
    watcher,
    ...(options.quarantine ? { quarantine: options.quarantine } : {}),
    submit: async (path) => {
      const bytes = await readFile(path);
      handed.push({ path, bytes });
      if (options.refuse?.(bytes))
        throw new PackageRejectedError('ARCHIVE_INVALID', 'The file is truncated.');
    },
  });
  after(() => source.close());
  /** Moves the clock on and waits for every look it started. */
  const pass = async (ms: number) => {
    clock.advance(ms);
    await source.settled();
  };
  return { dir, handed, source, watcher, pass };
}

describe('the watched folder', () => {
  test('hands over a file renamed in without waiting for it to settle', async () => {
    const { dir, handed, watcher, pass } = await watched('renamed', { settleMs: 3_600_000 });
    const tmp = join(work, 'staging.zip');
    await writeFile(tmp, 'complete package bytes');
    await rename(tmp, join(dir, 'pkg-1.zip'));
    watcher.emit('rename', 'pkg-1.zip');
    await pass(19);
    assert.equal(handed.length, 0, 'a write may still follow within the grace period');
    await pass(1);
    assert.equal(handed.length, 1);
    assert.equal(handed[0]!.bytes.toString(), 'complete package bytes');
  });

  test('a file renamed in and then written to waits to settle like any other', async () => {
    const { dir, handed, watcher, pass } = await watched('renamed-written', { settleMs: 1000 });
    await writeFile(join(work, 'staging-2.zip'), 'start');
    await rename(join(work, 'staging-2.zip'), join(dir, 'pkg-2.zip'));
    watcher.emit('rename', 'pkg-2.zip');
    await pass(5);
    await appendFile(join(dir, 'pkg-2.zip'), ' and the rest');
    watcher.emit('change', 'pkg-2.zip');
    await pass(1000);
    assert.equal(handed.length, 0, 'first seen complete now, then held for the settle time');
    await pass(1000);
    assert.deepEqual(
      handed.map((h) => h.bytes.toString()),
      ['start and the rest'],
    );
  });

  test('hands over a file written slowly in chunks once, after it is complete', async () => {
    const { dir, handed, source, watcher, pass } = await watched('slow', { settleMs: 1500 });
    const file = join(dir, 'slow.zip');
    // A writer pausing between chunks, each pause far shorter than the settle time.
    for (let i = 0; i < 6; i++) {
      await appendFile(file, `chunk ${i};`);
      watcher.emit('change', 'slow.zip');
      await pass(50);
    }
    await pass(1500);
    assert.equal(handed.length, 0, 'its size is noted when the writes stop, then must hold');
    await pass(1500);
    assert.equal(handed.length, 1);
    await source.scan();
    await source.scan();
    assert.equal(handed.length, 1, 'looked at twice more, not handed over again');
    assert.equal(handed[0]!.bytes.toString(), 'chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;chunk 5;');
  });

  test('refuses a truncated file once, and looks again only when it changes', async () => {
    const { dir, handed, source, watcher, pass } = await watched('truncated', {
      settleMs: 100,
      refuse: (b) => !b.toString().endsWith('END'),
    });
    await writeFile(join(dir, 'cut.zip'), 'half a package');
    watcher.emit('change', 'cut.zip');
    await pass(100);
    await pass(100);
    assert.equal(handed.length, 1);
    await source.scan();
    await source.scan();
    assert.equal(handed.length, 1, 'not retried while unchanged');
    await writeFile(join(dir, 'cut.zip'), 'the whole package END');
    watcher.emit('change', 'cut.zip');
    await pass(100);
    await pass(100);
    assert.equal(handed.length, 2);
    assert.equal(handed[1]!.bytes.toString(), 'the whole package END');
  });

  test('picks up packages already there at start, and ignores other files', async () => {
    const dir = join(work, 'existing');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'old.zip'), 'was here first');
    await writeFile(join(dir, 'notes.txt'), 'not a package');
    await writeFile(join(dir, '.partial.zip'), 'hidden: an upload in progress');
    const { handed, source, pass } = await watched('existing', { settleMs: 100 });
    await pass(0);
    await pass(100);
    await source.scan();
    assert.deepEqual(
      handed.map((h) => h.path),
      [join(dir, 'old.zip')],
    );
  });

  test('moves a refused package to quarantine with a .reason.json beside it', async () => {
    const quarantine = join(work, 'quarantine');
    const { dir, watcher, pass } = await watched('bad', { settleMs: 100, refuse: () => true, quarantine });
    await writeFile(join(work, 'bad-staging.zip'), 'nope');
    await rename(join(work, 'bad-staging.zip'), join(dir, 'bad.zip'));
    watcher.emit('rename', 'bad.zip');
    await pass(20);
    const names = existsSync(quarantine) ? readdirSync(quarantine) : [];
    const reason = names.find((n) => n.endsWith('bad.zip.reason.json'));
    assert.ok(reason, `quarantine holds ${names.join(', ')}`);
    assert.ok(names.some((n) => n.endsWith('bad.zip')));
    const written = JSON.parse(await readFile(join(quarantine, reason), 'utf8'));
    assert.equal(written.code, 'ARCHIVE_INVALID');
    assert.deepEqual(await readdir(dir), []);
  });

  test('keeps watching a folder that is deleted and created again', async () => {
    const { dir, handed, source, watcher, pass } = await watched('recreated', { settleMs: 100 });
    await rm(dir, { recursive: true });
    // The next look at the folder (a rescan) finds it gone; it is watched again once it is back.
    await source.scan();
    assert.equal(watcher.watches, 1);
    await pass(200);
    assert.equal(watcher.watches, 2, 'watched again');
    assert.ok(existsSync(dir), 'made again');
    await writeFile(join(work, 'again.zip'), 'after the folder came back');
    await rename(join(work, 'again.zip'), join(dir, 'again.zip'));
    watcher.emit('rename', 'again.zip');
    await pass(20);
    assert.equal(handed.length, 1);
    assert.equal(handed[0]!.bytes.toString(), 'after the folder came back');
  });

  test('a watcher that fails is replaced, and what arrived meanwhile is found by the scan after', async () => {
    const { dir, handed, watcher, pass } = await watched('watch-error', { settleMs: 100 });
    watcher.fail();
    await writeFile(join(work, 'meanwhile.zip'), 'arrived unseen');
    await rename(join(work, 'meanwhile.zip'), join(dir, 'meanwhile.zip'));
    await pass(200);
    assert.equal(watcher.watches, 2);
    // The scan after watching again notes the file; it counts once it held for the settle time.
    await pass(0);
    assert.equal(handed.length, 0);
    await pass(100);
    assert.deepEqual(
      handed.map((h) => h.bytes.toString()),
      ['arrived unseen'],
    );
  });
});

describe('the watched folder on fs.watch and the system clock', () => {
  test('a file renamed in is handed over', async () => {
    const dir = join(work, 'real');
    const handed: string[] = [];
    const source = await FolderSource.create({
      dir,
      rescanMs: 3_600_000,
      settleMs: 3_600_000,
      submit: async (path) => {
        handed.push(await readFile(path, 'utf8'));
      },
    });
    after(() => source.close());
    await writeFile(join(work, 'real-staging.zip'), 'seen by inotify');
    await rename(join(work, 'real-staging.zip'), join(dir, 'real.zip'));
    await until(() => handed.length === 1, 'a file handed over');
    assert.deepEqual(handed, ['seen by inotify']);
  });
});
