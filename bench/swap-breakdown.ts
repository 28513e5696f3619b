/**
 * Where a swap's cost lands in a request: an open-loop client sends a real page at --rate
 * requests/s and keeps the server's own timings from each answer (queue wait, decode,
 * detection, recognition, time inside onnxruntime), for --seconds without swaps and --seconds
 * while a new signed version is uploaded every --interval seconds, in --blocks blocks of each
 * that alternate (so a noisy machine's drift lands on both sides alike). One server
 * per --load-nice value (default 0,10,19) and --keep-threads value (1: a released version's
 * inference threads load the next one, the default; 0: --no-keep-threads), so the settings
 * are compared in the same run.
 *
 *   npm run build && node dist/bench/swap-breakdown.js [--rate 2] [--seconds 40] [--blocks 4] [--interval 2] [--load-nice 0,10,19] [--keep-threads 0,1]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { bundledPackages, startServer, upload } from './lib/server.js';
import { machine, median, percentile } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/swap-breakdown.js',
  "Where a swap's cost lands in a request: the server's own timings of each answer, without and with swaps, per setting.",
  {
    rate: { type: 'number', default: 2, min: 0.1, help: 'requests/s, open loop' },
    seconds: { type: 'number', default: 40, min: 1, help: 'seconds without swaps, and as many with them' },
    blocks: { type: 'number', default: 4, min: 1, help: 'blocks each way, alternating' },
    interval: { type: 'number', default: 2, min: 0.1, help: 'seconds between uploads' },
    'load-nice': {
      type: 'string',
      default: '0,10,19',
      help: 'comma-separated --load-nice values, one server each',
    },
    'keep-threads': {
      type: 'string',
      default: '1',
      help: 'comma-separated 1 (keep threads) and 0 (--no-keep-threads)',
    },
  },
);
const { rate, seconds, interval } = options;
const blocks = Math.round(options.blocks);
const nices = options['load-nice'].split(',').map(Number);
if (nices.some((n) => !Number.isInteger(n) || n < 0 || n > 19)) {
  console.error(
    'node dist/bench/swap-breakdown.js: --load-nice takes nice values from 0 to 19, comma-separated.',
  );
  process.exit(2);
}
const keepValues = options['keep-threads'].split(',');
if (keepValues.some((k) => k !== '0' && k !== '1')) {
  console.error('node dist/bench/swap-breakdown.js: --keep-threads takes 1 and 0, comma-separated.');
  process.exit(2);
}
const keeps = keepValues.map((k) => k === '1');
const settings = nices.flatMap((nice) => keeps.map((keep) => ({ nice, keep })));
const TOKEN = 'bench-admin-token-0123456789abcdef';
const STAGES = ['total', 'queue', 'decode', 'det', 'rec', 'inference'] as const;
type Timings = Record<(typeof STAGES)[number], number>;

const page = (await makePages(1))[0]!.png;
console.log(
  `${await machine()}; a page every ${1000 / rate} ms, ${seconds} s without and ${seconds} s with a swap asked for every ${interval} s, in ${blocks} alternating blocks of each`,
);
for (const { nice, keep } of settings) {
  const label = `--load-nice ${nice}${keep ? '' : ' --no-keep-threads'}`;
  const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-breakdown-'));
  await writeFile(join(dir, 'token'), TOKEN);
  const home = join(dir, 'home');
  const server = await startServer({
    home,
    tokenFile: join(dir, 'token'),
    args: ['--load-nice', String(nice), ...(keep ? [] : ['--no-keep-threads'])],
  });
  const { url } = server;
  try {
    const packages = await bundledPackages(
      dir,
      home,
      Array.from({ length: Math.ceil(seconds / interval) + blocks }, (_, i) => `4.3.${i}`),
    );
    let next = 0;
    const phase = async (withSwaps: boolean, seconds: number) => {
      const rows: Timings[] = [];
      let errors = 0;
      let swaps = 0;
      let swapErrors = 0;
      let stop = false;
      const swapper = (async () => {
        while (withSwaps && !stop && next < packages.length) {
          const t = performance.now();
          const { status } = await upload(url, TOKEN, packages[next++]!);
          swaps++;
          if (status !== 201) swapErrors++;
          const wait = t + interval * 1000 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      })();
      const pending: Promise<void>[] = [];
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        pending.push(
          (async () => {
            const t = performance.now();
            const res = await fetch(`${url}/v1/ocr`, {
              method: 'POST',
              headers: { 'content-type': 'image/png' },
              body: page,
            });
            const body = (await res.json()) as { timings?: Omit<Timings, 'total'> };
            if (res.status !== 200 || !body.timings) errors++;
            else rows.push({ ...body.timings, total: performance.now() - t });
          })(),
        );
        await new Promise((r) => setTimeout(r, 1000 / rate));
      }
      await Promise.all(pending);
      stop = true;
      await swapper;
      return { rows, errors, swaps, swapErrors };
    };
    await phase(false, 10); // a first pass, counted nowhere
    const before = { rows: [] as Timings[], errors: 0 };
    const during = { rows: [] as Timings[], errors: 0, swaps: 0, swapErrors: 0 };
    for (let b = 0; b < blocks; b++) {
      const quiet = await phase(false, seconds / blocks);
      before.rows.push(...quiet.rows);
      before.errors += quiet.errors;
      const swapping = await phase(true, seconds / blocks);
      during.rows.push(...swapping.rows);
      during.errors += swapping.errors;
      during.swaps += swapping.swaps;
      during.swapErrors += swapping.swapErrors;
      // The block's last version was answered after its requests ended; let the old one go.
      await new Promise((r) => setTimeout(r, 1000));
    }
    const cell = (rows: Timings[], k: (typeof STAGES)[number]) =>
      `${median(rows.map((r) => r[k])).toFixed(0)}/${percentile(
        rows.map((r) => r[k]),
        99,
      ).toFixed(0)}`;
    console.log(`${label}: p50/p99 ms (${STAGES.join(', ')})`);
    console.log(
      `  no swaps    ${STAGES.map((k) => cell(before.rows, k).padStart(10)).join('')}  errors ${before.errors}`,
    );
    console.log(
      `  with swaps  ${STAGES.map((k) => cell(during.rows, k).padStart(10)).join('')}  errors ${during.errors}, ${during.swaps} swaps (${during.swapErrors} failed)`,
    );
    const p99 = (rows: Timings[]) =>
      percentile(
        rows.map((r) => r.total),
        99,
      );
    console.log(`  p99 with / without swaps: ${(p99(during.rows) / p99(before.rows)).toFixed(2)}x`);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
