/**
 * What a freshly loaded version's first pages cost, and where: a pool of 2 inference threads
 * reads the warm-up image, then the same page twice at once, --passes times. Per pass, the
 * median over --rounds of the time inside onnxruntime's run() (the graphs) and of the rest
 * (the pipeline's JavaScript: resizing, tensors, box finding, crops, decoding; and
 * messages). Two kinds of pool, alternated in each round: on new threads, and on the kept
 * threads of a pool that has just read pages and been released (what a swap gets by
 * default; --no-keep-threads gives new threads every time).
 *
 *   npm run build && node dist/bench/first-pages.js [--rounds 8] [--passes 4]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceThreads, type OcrWorkerPool } from '../src/loaders/index.js';
import { decodeImage } from '../src/ocr/index.js';
import { verifiedBundled } from '../test/helpers/bundled.js';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { machine, median } from './lib/stats.js';

/** The inference threads these loads run on, as a server's own. */
const threads = new InferenceThreads();

const { rounds, passes } = benchOptions(
  'node dist/bench/first-pages.js',
  "What a freshly loaded version's first pages cost, on new threads and on kept ones.",
  {
    rounds: { type: 'number', default: 8, min: 1, help: 'rounds, each kind of pool once per round' },
    passes: { type: 'number', default: 4, min: 1, help: 'pages read twice at once, per pool' },
  },
);
const POOL = { workers: 2, intraOpThreads: 1 } as const;

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-first-'));
try {
  const pkg = await verifiedBundled(join(dir, 'home'));
  const [page, other] = await Promise.all((await makePages(2)).map((p) => decodeImage(p.png)));
  const warm = await decodeImage(await readFile(new URL('../../assets/warmup.png', import.meta.url)));
  const kinds = ['new threads', 'kept threads'] as const;
  // Per kind, per pass: the graphs' and the rest's milliseconds, one entry per round.
  const graphs = new Map(kinds.map((k) => [k, Array.from({ length: passes }, () => [] as number[])]));
  const rest = new Map(kinds.map((k) => [k, Array.from({ length: passes }, () => [] as number[])]));
  for (let r = 0; r < rounds; r++) {
    for (const kind of kinds) {
      // New threads: a blocker holds every kept thread, so the measured pool starts its own.
      let blocker: OcrWorkerPool | undefined;
      if (kind === 'new threads') blocker = await threads.load(pkg, { ...POOL, workers: 4 });
      else {
        const previous = await threads.load(pkg, POOL);
        for (let i = 0; i < 4; i++) await Promise.all([previous.read(page!), previous.read(other!)]);
        await previous.release();
      }
      const pool = await threads.load(pkg, POOL);
      await pool.read(warm);
      await pool.ready();
      for (let p = 0; p < passes; p++) {
        const both = await Promise.all([pool.read(page!), pool.read(page!)]);
        for (const { timings: t } of both) {
          graphs.get(kind)![p]!.push(t.inference);
          rest.get(kind)![p]!.push(t.total - t.inference);
        }
      }
      await pool.release();
      await blocker?.release();
    }
  }
  console.log(
    `${await machine()}; ${rounds} rounds; ms per page, median; pass 1..${passes}; ${page!.width}x${page!.height} page`,
  );
  for (const kind of kinds) {
    const row = (m: Map<string, number[][]>) =>
      m
        .get(kind)!
        .map((v) => median(v).toFixed(0).padStart(5))
        .join('');
    console.log(`${kind.padEnd(14)} outside the graphs ${row(rest)}   in the graphs ${row(graphs)}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
