/**
 * Which inference-thread and onnxruntime session settings read pages fastest on this
 * machine: one page at a time (latency) and four at once (throughput), per configuration.
 * The defaults in src/loaders/worker-pool.ts and onnxruntime-node.ts come from this.
 *
 *   npm run build && node dist/bench/ocr-threads.js [--pages 12]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOcrModel, type PoolOptions } from '../src/loaders/index.js';
import { decodeImage } from '../src/ocr/index.js';
import { verifiedBundled } from '../test/helpers/bundled.js';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { machine, median } from './lib/stats.js';

const { pages: pageCount } = benchOptions(
  'node dist/bench/ocr-threads.js',
  'Which inference-thread and onnxruntime session settings read pages fastest on this machine.',
  { pages: { type: 'number', default: 12, min: 1, help: 'generated pages' } },
);
const configs: [string, PoolOptions][] = [
  ['2 threads x 1 intra-op (default)', { workers: 2, intraOpThreads: 1 }],
  ['1 thread x 2 intra-op', { workers: 1, intraOpThreads: 2 }],
  ['1 x 2, spinning on', { workers: 1, intraOpThreads: 2, spinning: true }],
  ['1 x 2, memory arena off', { workers: 1, intraOpThreads: 2, cpuMemArena: false }],
  ['1 thread x 1 intra-op', { workers: 1, intraOpThreads: 1 }],
];
const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-threads-'));
try {
  const pkg = await verifiedBundled(join(dir, 'home'));
  const images = await Promise.all((await makePages(pageCount)).map((p) => decodeImage(p.png)));
  const rows: string[] = [];
  for (const [label, options] of configs) {
    const model = await loadOcrModel(pkg, options);
    for (const img of images.slice(0, 2)) await model.read(img); // warm-up
    const latency: number[] = [];
    for (const img of images) {
      const t = performance.now();
      await model.read(img);
      latency.push(performance.now() - t);
    }
    const t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < images.length) await model.read(images[next++]!);
      }),
    );
    const pagesPerSecond = images.length / ((performance.now() - t) / 1000);
    await model.release();
    rows.push(
      `${label.padEnd(34)} ${median(latency).toFixed(0).padStart(12)} ${pagesPerSecond.toFixed(2).padStart(16)}`,
    );
  }
  console.log(`bench/ocr-threads: ${pageCount} generated pages; ${await machine()}`);
  console.log(
    `${'configuration'.padEnd(34)} ${'ms/page (1)'.padStart(12)} ${'pages/s (4 at once)'.padStart(16)}`,
  );
  for (const r of rows) console.log(r);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
