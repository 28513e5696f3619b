// test-needs: model
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { HotocrError } from '../src/errors.js';
import {
  InferenceThreads,
  type LoaderPackage,
  type OcrWorkerPool,
  type PoolOptions,
} from '../src/loaders/index.js';
import { readsAs, verifiedBundled, withDigests } from './helpers/bundled.js';
import { tempDir } from './helpers/tmp.js';

/** The inference threads these loads run on, as a server's own. */
const threads = new InferenceThreads();

const work = tempDir();

/** The bundled package as the server loads it: verified, with the digests it was verified with. */
async function bundled(): Promise<LoaderPackage> {
  return withDigests(await verifiedBundled(join(work, 'home')));
}

/** The same package with other detection parameters: no box is ever large enough. */
function findingNothing(pkg: LoaderPackage): LoaderPackage {
  return { ...pkg, manifest: { ...pkg.manifest, det: { ...pkg.manifest.det, minSize: 100_000 } } };
}

const options: PoolOptions = { workers: 2, intraOpThreads: 1 };

describe('versions with the same graphs share their sessions', () => {
  test('a version whose graphs are open shares them, reads with its own parameters, and outlives the first', async () => {
    const first = await threads.load(await bundled(), options);
    let firstReleased = false;
    try {
      const shared = threads.sharedGraphSessions();
      const lookups = threads.optimizedGraphStats();
      const second = await threads.load(findingNothing(await bundled()), options);
      try {
        // All three graphs were taken open: none was looked up among the optimized ones, or opened.
        assert.equal(threads.sharedGraphSessions() - shared, 3);
        assert.equal(threads.optimizedGraphStats().hits, lookups.hits);
        assert.equal(threads.optimizedGraphStats().misses, lookups.misses);
        // Each version reads with its own parameters on the same sessions, at once.
        const [a, b, c, d] = await Promise.all([
          readsAs(first, 'Shared first 11'),
          readsAs(second, 'Shared second 12'),
          readsAs(first, 'Shared first 13'),
          readsAs(second, 'Shared second 14'),
        ]);
        assert.deepEqual([a, b, c, d], ['Sharedfirst11', '', 'Sharedfirst13', '']);

        // The first released, the second still reads: the sessions go with the last version.
        await first.release();
        firstReleased = true;
        await assert.rejects(readsAs(first, 'Released 15'), /released/);
        assert.equal(await readsAs(second, 'Still shared 16'), '');

        // And a third loads on the second's threads, though the version that opened them is gone.
        const third = await threads.load(await bundled(), options);
        try {
          assert.equal(threads.sharedGraphSessions() - shared, 6);
          assert.equal(await readsAs(third, 'Shared third 17'), 'Sharedthird17');
        } finally {
          await third.release();
        }
      } finally {
        await second.release();
      }
    } finally {
      if (!firstReleased) await first.release();
    }
    // Once no version holds them, the sessions are gone: the next load opens its own again.
    const shared = threads.sharedGraphSessions();
    const alone = await threads.load(await bundled(), options);
    try {
      assert.equal(threads.sharedGraphSessions(), shared);
      assert.equal(await readsAs(alone, 'Alone again 18'), 'Aloneagain18');
    } finally {
      await alone.release();
    }
  });

  test('only the same graphs, runtime, options and thread count share, and sharing takes a fraction of the CPU', async () => {
    const serving = await threads.load(await bundled(), options);
    try {
      const shared = threads.sharedGraphSessions();
      const pkg = await bundled();
      const unshared: [string, () => Promise<OcrWorkerPool>][] = [
        ['no digests', () => threads.load({ ...pkg, digests: undefined }, options)],
        ['other options', () => threads.load(pkg, { ...options, spinning: true })],
        ['another thread count', () => threads.load(pkg, { ...options, workers: 1 })],
        ['another runtime', () => threads.load(pkg, { workers: 2, runtime: 'onnxruntime-wasm' })],
        [
          'another graph',
          () =>
            threads.load(
              {
                ...pkg,
                digests: new Map([...pkg.digests!, [pkg.manifest.graphs.cls!, 'cd'.repeat(32)]]),
              },
              options,
            ),
        ],
      ];
      for (const [what, load] of unshared) {
        const pool = await load();
        try {
          assert.equal(threads.sharedGraphSessions(), shared, what);
          assert.equal(await readsAs(pool, 'Not shared 21'), 'Notshared21', what);
        } finally {
          await pool.release();
        }
      }

      // Three more loads share all three sessions each, and open no graph: neither optimized
      // nor read from its kept form (what that saves in CPU is bench/graph-open's figure).
      const graphs = threads.optimizedGraphStats();
      for (let i = 0; i < 3; i++) await (await threads.load(pkg, options)).release();
      assert.equal(threads.sharedGraphSessions() - shared, 9);
      const after = threads.optimizedGraphStats();
      assert.deepEqual([after.hits, after.misses], [graphs.hits, graphs.misses], 'no graph was opened');
      assert.equal(await readsAs(serving, 'Serving on 22'), 'Servingon22');
    } finally {
      await serving.release();
    }
  });

  test('a version refused on shared sessions leaves the loaded one serving, and its sessions open', async () => {
    const serving = await threads.load(await bundled(), options);
    try {
      const pkg = await bundled();
      // Without the space class the dictionary no longer fits the recogniser.
      const misfit: LoaderPackage = {
        ...pkg,
        manifest: { ...pkg.manifest, rec: { ...pkg.manifest.rec, useSpaceChar: false } },
      };
      const shared = threads.sharedGraphSessions();
      await assert.rejects(
        threads.load(misfit, options),
        (e: HotocrError) => e.code === 'GRAPH_INCOMPATIBLE' && e.message.includes('dictionary'),
      );
      assert.equal(threads.sharedGraphSessions(), shared, 'a refused version is not counted');
      assert.equal(await readsAs(serving, 'Still serving 31'), 'Stillserving31');
      // The refused version's references were given back, not the serving one's.
      const next = await threads.load(pkg, options);
      await next.release();
      assert.equal(threads.sharedGraphSessions() - shared, 3);
      assert.equal(await readsAs(serving, 'Still serving 32'), 'Stillserving32');
    } finally {
      await serving.release();
    }
  });
});
