// test-needs: model
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type HotocrError, PackageRejectedError } from '../src/errors.js';
import { InferenceThreads, type LoaderPackage, Loaders, type OcrWorkerPool } from '../src/loaders/index.js';
import { ensureBundledPackage } from '../src/pack/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { readsAs, verifiedBundled, withDigests } from './helpers/bundled.js';
import { tempDir } from './helpers/tmp.js';

/** The inference threads these loads run on, as a server's own. */
const threads = new InferenceThreads();

const work = tempDir();

/** The bundled package as verified, and the same with the digests it was verified with. */
async function bundled(): Promise<{ plain: LoaderPackage; withDigests: LoaderPackage }> {
  const pkg = await verifiedBundled(join(work, 'home'));
  return {
    plain: pkg,
    withDigests: withDigests(pkg),
  };
}

describe('graphs optimized once per process', () => {
  // First: no inference thread has started yet, so those of this test see the temporary folder set here.
  test('where the optimized form cannot be written, the version loads all the same and nothing is kept', async () => {
    const { withDigests } = await bundled();
    const file = join(work, 'not-a-folder');
    await writeFile(file, 'a file where the temporary folder should be');
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = join(file, 'tmp');
    let pool: OcrWorkerPool;
    try {
      // Its threads are stopped once released: none is left with this folder for later tests.
      // With filesMovable the first thread takes the verified bytes, and gives back those it
      // could not optimize, for the second.
      pool = await threads.load(
        { ...withDigests, filesMovable: true },
        { workers: 2, intraOpThreads: 1, keepThreads: false },
      );
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
    }
    try {
      assert.deepEqual(threads.optimizedGraphStats(), { entries: 0, bytes: 0, hits: 0, misses: 3 });
      const pages = await Promise.all(['Not kept 41', 'Not kept 42'].map((l) => readsAs(pool, l)));
      assert.deepEqual(pages, ['Notkept41', 'Notkept42']);
    } finally {
      await pool.release();
    }
  });

  test('graphs seen before open without being optimized again: every thread reads, for less CPU', async () => {
    const { plain, withDigests } = await bundled();
    const options = { workers: 2, intraOpThreads: 1 };
    // Without digests nothing is kept or looked up.
    const start = threads.optimizedGraphStats();
    await (await threads.load(plain, options)).release();
    assert.deepEqual(threads.optimizedGraphStats(), start);

    // The first load optimizes the three graphs on one thread and keeps them. Told the
    // caller reads the bytes no more, that thread takes them rather than a copy.
    const moving = (await bundled()).withDigests;
    const first = await threads.load({ ...moving, filesMovable: true }, options);
    try {
      for (const role of ['det', 'rec', 'cls'] as const)
        assert.equal(moving.files.get(moving.manifest.graphs[role]!)!.byteLength, 0, `${role} moved`);
      const { bytes, ...counts } = threads.optimizedGraphStats();
      assert.deepEqual(counts, { entries: 3, hits: start.hits, misses: start.misses + 3 });
      assert.ok(bytes > 1_000_000, `${bytes} bytes kept`);
      // Both threads read: the one that optimized the graphs and the one sent them optimized.
      const pages = await Promise.all(
        ['Seen first 51', 'Seen first 52', 'Seen first 53'].map((l) => readsAs(first, l)),
      );
      assert.deepEqual(pages, ['Seenfirst51', 'Seenfirst52', 'Seenfirst53']);
    } finally {
      await first.release();
    }

    // The next version with the same graphs finds all three, on every thread.
    const next = await threads.load(withDigests, options);
    try {
      assert.equal(threads.optimizedGraphStats().hits, start.hits + 3);
      const pages = await Promise.all(
        ['Seen again 61', 'Seen again 62', 'Seen again 63'].map((l) => readsAs(next, l)),
      );
      assert.deepEqual(pages, ['Seenagain61', 'Seenagain62', 'Seenagain63']);
    } finally {
      await next.release();
    }

    // Every later load with the same digests opens the kept form: no graph is optimized again
    // (what that saves in CPU is bench/graph-open's figure).
    const before = threads.optimizedGraphStats();
    for (let i = 0; i < 3; i++) await (await threads.load(withDigests, options)).release();
    const after = threads.optimizedGraphStats();
    assert.equal(after.hits, before.hits + 9);
    assert.equal(after.misses, before.misses, 'no graph was optimized again');
    assert.equal(after.entries, before.entries);
  });

  test('a graph that does not open still fails with GRAPH_INVALID, and nothing is kept for it', async () => {
    const { withDigests } = await bundled();
    const rec = withDigests.manifest.graphs.rec;
    const broken: LoaderPackage = {
      ...withDigests,
      files: new Map([...withDigests.files, [rec, new Uint8Array(64).fill(7)]]),
      digests: new Map([...withDigests.digests!, [rec, 'ab'.repeat(32)]]),
    };
    const before = threads.optimizedGraphStats().entries;
    await assert.rejects(threads.load(broken, { workers: 2, intraOpThreads: 1 }), (e: HotocrError) => {
      assert.equal(e.code, 'GRAPH_INVALID');
      assert.match(e.message, /rec graph/);
      // Rebuilt on this side of the thread as it was thrown: its details and onnxruntime's own words.
      assert.ok(e instanceof PackageRejectedError);
      assert.deepEqual(e.details, { role: 'rec', runtime: 'onnxruntime-node' });
      assert.ok(e.cause instanceof Error && e.cause.message.length > 0);
      return true;
    });
    // A load that fails keeps nothing, not even the graphs it opened before the broken one.
    assert.equal(threads.optimizedGraphStats().entries, before);
    const pool = await threads.load(withDigests, { workers: 2, intraOpThreads: 1 });
    try {
      assert.equal(await readsAs(pool, 'After a broken graph 71'), 'Afterabrokengraph71');
    } finally {
      await pool.release();
    }
  });

  test('graphs held optimized are hashed but not kept when verified, and load without their bytes', async () => {
    const { withDigests: full } = await bundled();
    // Held from here on, whatever the tests before did.
    await (await threads.load(full, { workers: 1, intraOpThreads: 1 })).release();
    const loaders = Loaders.builtin({ threads });
    const bundledPkg = await ensureBundledPackage(join(work, 'home'));
    const seen: string[] = [];
    const pkg = await verifyPackage(bundledPkg.packagePath, {
      trust: await TrustStore.load(bundledPkg.trustPath),
      keepBytes: (entry, manifest) => {
        seen.push(entry.name);
        return loaders.keeps(entry, manifest);
      },
    });
    const m = pkg.manifest;
    const graphNames = Object.values(m.graphs);
    assert.equal(pkg.sha256, full.sha256);
    assert.deepEqual(
      graphNames.filter((n) => pkg.files.has(n)),
      [],
      'no graph bytes kept',
    );
    assert.ok(pkg.files.has(m.dict!) && pkg.files.has('config.json'), 'the dictionary and manifest kept');
    assert.ok(graphNames.every((n) => seen.includes(n)));
    // The loader of another runtime holds nothing; a digest never optimized is not held.
    const rec = { name: m.graphs.rec, sha256: full.digests!.get(m.graphs.rec)! };
    assert.equal(loaders.keeps(rec, m), false);
    assert.equal(loaders.keeps(rec, { ...m, runtime: 'onnxruntime-wasm' }), true);
    assert.equal(loaders.keeps({ ...rec, sha256: 'cd'.repeat(32) }, m), true);

    const pool = await threads.load(withDigests(pkg), { workers: 2, intraOpThreads: 1 });
    try {
      assert.equal(await readsAs(pool, 'Without the bytes 91'), 'Withoutthebytes91');
    } finally {
      await pool.release();
    }
    // Without the digests nothing held can be found for them: a clear refusal.
    await assert.rejects(
      threads.load(pkg, { workers: 2, intraOpThreads: 1 }),
      (e: HotocrError) =>
        e.code === 'GRAPH_INVALID' &&
        /was not kept when the package was verified \(keepBytes\), and no optimized form of it is held/.test(
          e.message,
        ),
    );
  });

  test('the WebAssembly runtime neither keeps nor uses optimized graphs', async () => {
    const { withDigests } = await bundled();
    const before = threads.optimizedGraphStats();
    const pool = await threads.load(withDigests, { workers: 1, runtime: 'onnxruntime-wasm' });
    try {
      assert.equal(await readsAs(pool, 'Web assembly 81'), 'Webassembly81');
      assert.deepEqual(threads.optimizedGraphStats(), before);
    } finally {
      await pool.release();
    }
  });
});
