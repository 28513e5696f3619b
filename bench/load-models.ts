/**
 * Two models on one server, one flooded and one swapped: does the flood or the swap cost the
 * other model its answers? The bundled model (ppocr) is flooded, closed loop with
 * --flood-connections at once, more than its places (--max-inflight + --max-queue), so part of
 * it is refused OVERLOADED; a second model (calm, the same graphs under another name) is sent
 * --rate requests/s of its own, and in every other block a new version of calm is uploaded
 * every --interval seconds. The blocks alternate: calm alone (the peer: no flood, no swap),
 * calm beside the flood, calm beside the flood while it is swapped. For calm, each prints the
 * share admitted, p50, p99, and in the swap blocks the p99 inside and outside the swap
 * windows (an upload's start to 250 ms after its answer); for the flood, the share admitted.
 * Reported, not asserted.
 *
 *   npm run build && node dist/bench/load-models.js [--duration 30] [--blocks 3] [--rate 2] [--flood-connections 48] [--interval 3]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { bundledPackages, startServer, upload } from './lib/server.js';
import { machine, median, percentile } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/load-models.js',
  'Two models, one flooded and one swapped: the other model admitted, its p50 and p99, inside and outside the swap windows.',
  {
    duration: {
      type: 'number',
      default: 30,
      min: 1,
      help: 'seconds of each kind of block, all blocks together',
    },
    blocks: { type: 'number', default: 3, min: 1, help: 'blocks of each kind, alternating' },
    rate: { type: 'number', default: 2, min: 0.1, help: 'requests/s sent to the calm model' },
    'flood-connections': { type: 'number', default: 48, min: 1, help: 'connections flooding ppocr' },
    interval: {
      type: 'number',
      default: 3,
      min: 0.5,
      help: 'seconds between uploads of calm in the swap blocks',
    },
    'max-inflight': { type: 'number', default: 2, min: 1, help: 'passed to the server' },
    'max-queue': { type: 'number', default: 8, min: 0, help: 'passed to the server' },
  },
);
const blocks = Math.round(options.blocks);
const block = options.duration / blocks;
const TOKEN = 'bench-admin-token-0123456789abcdef';

interface Sample {
  start: number;
  end: number;
  status: number;
}

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-models-'));
const home = join(dir, 'home');
await writeFile(join(dir, 'token'), TOKEN);
const server = await startServer({
  home,
  tokenFile: join(dir, 'token'),
  args: ['--max-inflight', String(options['max-inflight']), '--max-queue', String(options['max-queue'])],
  stdout: 'inherit',
});
const { url } = server;
try {
  const swaps = Math.ceil(block / options.interval + 1) * blocks + 1;
  console.log(`packing ${swaps} versions of calm...`);
  const packages = await bundledPackages(
    dir,
    home,
    Array.from({ length: swaps }, (_, i) => `1.0.${i}`),
    false,
    'calm',
  );
  let next = 0;
  const first = await upload(url, TOKEN, packages[next++]!);
  if (first.status !== 201) throw new Error(`calm was not taken: ${first.status} ${first.text}`);
  const page = (await makePages(1))[0]!;

  /** Requests to `path` for `seconds`: closed loop on `connections`, or at `rate` requests/s. */
  const load = (path: string, seconds: number, shape: { connections: number; rate?: number }) =>
    new Promise<Sample[]>((resolve, reject) => {
      const samples: Sample[] = [];
      const instance = autocannon(
        {
          url: `${url}${path}`,
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: page.png,
          connections: shape.connections,
          duration: seconds,
          timeout: 30,
          ...(shape.rate ? { overallRate: shape.rate } : {}),
        },
        (error) => (error ? reject(error) : resolve(samples)),
      );
      instance.on('response', (_client, status, _bytes, responseTime) => {
        const end = performance.now();
        samples.push({ start: end - responseTime, end, status });
      });
      instance.on('reqError', () => samples.push({ start: 0, end: 0, status: 0 }));
    });

  const calm = (seconds: number) =>
    load('/v1/models/calm/ocr', seconds, { connections: 4, rate: options.rate });
  const flood = (seconds: number) =>
    load('/v1/models/ppocr/ocr', seconds, { connections: options['flood-connections'] });

  const kinds = {
    alone: { calm: [] as Sample[], flood: [] as Sample[] },
    flooded: { calm: [] as Sample[], flood: [] as Sample[] },
    swapped: { calm: [] as Sample[], flood: [] as Sample[] },
  };
  const windows: { start: number; end: number }[] = [];
  let swapFailures = 0;

  console.log(
    `${await machine()}; server --max-inflight ${options['max-inflight']} --max-queue ${options['max-queue']}; ppocr flooded by ${options['flood-connections']} connections; calm at ${options.rate} req/s; ${blocks} blocks of ${block} s of each kind`,
  );
  await calm(2); // warm-up, counted nowhere
  for (let b = 0; b < blocks; b++) {
    kinds.alone.calm.push(...(await calm(block)));
    const [f1, c1] = await Promise.all([flood(block), calm(block)]);
    kinds.flooded.flood.push(...f1);
    kinds.flooded.calm.push(...c1);
    let stop = false;
    const swapper = (async () => {
      while (!stop && next < packages.length) {
        const start = performance.now();
        const { status } = await upload(url, TOKEN, packages[next++]!);
        if (status !== 201) swapFailures++;
        windows.push({ start, end: performance.now() + 250 });
        const wait = start + options.interval * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    const [f2, c2] = await Promise.all([flood(block), calm(block)]);
    stop = true;
    await swapper;
    kinds.swapped.flood.push(...f2);
    kinds.swapped.calm.push(...c2);
    await new Promise((r) => setTimeout(r, 1000));
  }

  const figures = (samples: Sample[]) => {
    const ok = samples.filter((s) => s.status === 200).map((s) => s.end - s.start);
    const refused = samples.filter((s) => s.status === 503).length;
    return {
      n: samples.length,
      admitted: samples.length ? (samples.length - refused) / samples.length : Number.NaN,
      failed: samples.filter((s) => s.status !== 200 && s.status !== 503).length,
      p50: ok.length ? median(ok) : Number.NaN,
      p99: ok.length ? percentile(ok, 99) : Number.NaN,
    };
  };
  const row = (label: string, samples: Sample[]) => {
    const f = figures(samples);
    console.log(
      `${label.padEnd(44)} ${String(f.n).padStart(5)} requests  admitted ${(100 * f.admitted).toFixed(1).padStart(5)} %  p50 ${f.p50.toFixed(0).padStart(5)} ms  p99 ${f.p99.toFixed(0).padStart(5)} ms  other failures ${f.failed}`,
    );
    return f;
  };
  const overlaps = (x: Sample) => windows.some((w) => x.start < w.end && x.end > w.start);
  const alone = row('calm alone (peer)', kinds.alone.calm);
  const beside = row('calm beside the flood', kinds.flooded.calm);
  const swapped = row('calm beside the flood, swapped', kinds.swapped.calm);
  const inside = row('  overlapping a swap of calm', kinds.swapped.calm.filter(overlaps));
  const outside = row(
    '  not overlapping one',
    kinds.swapped.calm.filter((x) => !overlaps(x)),
  );
  const floodRow = row('ppocr flooded', [...kinds.flooded.flood, ...kinds.swapped.flood]);
  console.log(
    `${windows.length} swaps of calm (${swapFailures} failed), median window ${median(windows.map((w) => w.end - w.start)).toFixed(0)} ms`,
  );
  console.log(
    `calm p99 beside the flood / alone: ${(beside.p99 / alone.p99).toFixed(2)}x; swapped / alone: ${(swapped.p99 / alone.p99).toFixed(2)}x; inside / outside swap windows: ${(inside.p99 / outside.p99).toFixed(2)}x`,
  );
  console.log(
    `calm admitted: alone ${(100 * alone.admitted).toFixed(1)} %, beside the flood ${(100 * beside.admitted).toFixed(1)} %, swapped ${(100 * swapped.admitted).toFixed(1)} %; ppocr (flooded) admitted ${(100 * floodRow.admitted).toFixed(1)} %`,
  );
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
