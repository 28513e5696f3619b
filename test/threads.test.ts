// test-needs: model
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readServeConfig } from '../src/config.js';
import type { HotocrError } from '../src/errors.js';
import { canRestorePriority, InferenceThreads, type LoaderPackage } from '../src/loaders/index.js';
import { readsAs, verifiedBundled } from './helpers/bundled.js';
import { atNice, threadIds as threads } from './helpers/threads.js';
import { tempDir } from './helpers/tmp.js';

/** The inference threads these loads run on, as a server's own. */
const inference = new InferenceThreads();

const work = tempDir();

const bundled = (): Promise<LoaderPackage> => verifiedBundled(join(work, 'home'));

describe('inference threads outlive their version', () => {
  test("a released version's threads load the next one: no thread started, none left behind", async () => {
    const pkg = await bundled();
    const first = await inference.load(pkg, { workers: 2, intraOpThreads: 1 });
    assert.equal(await readsAs(first, 'First version 11'), 'Firstversion11');
    const serving = threads();
    await first.release();
    // Kept, not stopped...
    assert.deepEqual(threads(), serving);
    const next = await inference.load(pkg, { workers: 2, intraOpThreads: 1 });
    try {
      // ...and taken by the next version: the same threads, with its own sessions.
      assert.deepEqual(threads(), serving);
      assert.equal(await readsAs(next, 'Next version 22'), 'Nextversion22');
      // A third pool while the second serves needs threads of its own.
      const third = await inference.load(pkg, { workers: 2, intraOpThreads: 1 });
      const grown = threads().length;
      await third.release();
      assert.ok(grown >= serving.length + 2, `${grown} threads, ${serving.length} before`);
    } finally {
      await next.release();
    }
  });

  test('with filesMovable the last thread takes the verified graphs themselves; without it they stay whole', async () => {
    const pkg = await bundled();
    const graphs = [pkg.manifest.graphs.det, pkg.manifest.graphs.rec, pkg.manifest.graphs.cls].filter(
      (g): g is string => g !== undefined,
    );
    const sizes = graphs.map((g) => pkg.files.get(g)!.byteLength);
    const kept = await inference.load(pkg, { workers: 2, intraOpThreads: 1 });
    await kept.release();
    assert.deepEqual(
      graphs.map((g) => pkg.files.get(g)!.byteLength),
      sizes,
    );
    const moved = await inference.load({ ...pkg, filesMovable: true }, { workers: 2, intraOpThreads: 1 });
    try {
      // Moved to the thread, so emptied here; the dictionary is left as it was.
      assert.deepEqual(
        graphs.map((g) => pkg.files.get(g)!.byteLength),
        graphs.map(() => 0),
      );
      assert.ok(pkg.files.get(pkg.manifest.dict!)!.byteLength > 0);
      // Both threads read: the one that was sent a copy and the one that took the originals.
      const pages = await Promise.all(
        ['Moved bytes 31', 'Moved bytes 32', 'Moved bytes 33'].map((l) => readsAs(moved, l)),
      );
      assert.deepEqual(pages, ['Movedbytes31', 'Movedbytes32', 'Movedbytes33']);
    } finally {
      await moved.release();
    }
  });

  test('a version that fails to load at low priority leaves its threads at serving priority', async () => {
    const pkg = await bundled();
    // The runtime's first sessions are never lowered: open them first.
    await (await inference.load(pkg, { workers: 2, intraOpThreads: 1 })).release();
    const before = atNice(17);
    const broken: LoaderPackage = {
      ...pkg,
      files: new Map([...pkg.files, [pkg.manifest.graphs.rec, new Uint8Array(64).fill(7)]]),
    };
    await assert.rejects(
      inference.load(broken, { workers: 2, intraOpThreads: 1, loadNice: 17 }),
      (e: HotocrError) => e.code === 'GRAPH_INVALID',
    );
    // Its threads were kept only at the priority they had (or stopped, where it could not be taken back).
    assert.equal(atNice(17), before);
    const pool = await inference.load(pkg, { workers: 2, intraOpThreads: 1 });
    try {
      assert.equal(atNice(17), before);
      assert.equal(await readsAs(pool, 'After a failure 33'), 'Afterafailure33');
    } finally {
      await pool.release();
    }
    if (!canRestorePriority()) return;
    // A version loaded low and then released is kept at serving priority too.
    const low = await inference.load(pkg, { workers: 2, intraOpThreads: 1, loadNice: 17 });
    assert.equal(atNice(17) - before, 2);
    await low.release();
    assert.equal(atNice(17), before);
  });

  test('with keepThreads off (--no-keep-threads, HOTOCR_KEEP_THREADS=0) a released version stops its threads', async () => {
    assert.equal(readServeConfig({}, {}).keepThreads, true);
    assert.equal(readServeConfig({ keepThreads: false }, {}).keepThreads, false);
    assert.equal(readServeConfig({}, { HOTOCR_KEEP_THREADS: '0' }).keepThreads, false);
    assert.equal(readServeConfig({}, { HOTOCR_KEEP_THREADS: '1' }).keepThreads, true);
    // Not silently "on": a value that is neither 1 nor 0 is refused, as for every on/off variable.
    for (const env of [
      { HOTOCR_KEEP_THREADS: 'false' },
      { HOTOCR_ALLOW_PINNING: 'yes' },
      { HOTOCR_ALLOW_LEGACY_SIGNATURES: 'true' },
    ]) {
      assert.throws(
        () => readServeConfig({}, env),
        (e: HotocrError) => e.code === 'SETTING_INVALID' && e.message.includes('must be 1 or 0'),
      );
    }
    const pkg = await bundled();
    const before = threads().length;
    const pool = await inference.load(pkg, { workers: 2, intraOpThreads: 1, keepThreads: false });
    assert.equal(await readsAs(pool, 'Last version 44'), 'Lastversion44');
    await pool.release();
    // Its own two threads are gone (kept ones from earlier tests, if any, were used first).
    assert.ok(threads().length <= before, `${threads().length} threads, ${before} before`);
  });

  test('kept threads do not hold the process open, in a process started with --input-type or V8 flags too', async () => {
    const script = `
      import { InferenceThreads } from ${JSON.stringify(new URL('../src/loaders/index.js', import.meta.url).href)};
      import { verifiedBundled } from ${JSON.stringify(new URL('./helpers/bundled.js', import.meta.url).href)};
      const pkg = await verifiedBundled(${JSON.stringify(join(work, 'home'))});
      await (await new InferenceThreads().load(pkg, { workers: 2, intraOpThreads: 1 })).release();
      console.log('released');`;
    const file = join(work, 'release-and-end.mjs');
    await writeFile(file, script);
    // A thread inherits the process's flags; --input-type must not reach it, or its module is
    // refused, and V8's flags must not be given to it, or it refuses to start.
    for (const args of [
      [file],
      ['--input-type=module', '-e', script],
      ['--max-old-space-size=1024', file],
      ['--max-old-space-size=1024', '--input-type', 'module', '-e', script],
    ]) {
      const child = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.signal, null, `the process did not end by itself (${args.join(' ').slice(0, 60)})`);
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), 'released');
    }
  });
});
