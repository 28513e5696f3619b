/**
 * Where a swap's cost lands in a request: an open-loop client sends a real page at --rate
 * requests/s and keeps the server's own timings from each answer (queue wait, decode,
 * detection, recognition, time inside onnxruntime), for --seconds without swaps and then
 * for --seconds while a new signed version is uploaded every --interval seconds. One server
 * per --load-nice value (default 0,10,19), so the values are compared in the same run.
 *
 *   npm run build && node dist/bench/swap-breakdown.js [--rate 2] [--seconds 40] [--interval 2] [--load-nice 0,10,19]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { makePages } from './lib/pages.js';
import { machine, median, percentile } from './lib/stats.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const rate = Number(arg('--rate', '2'));
const seconds = Number(arg('--seconds', '40'));
const interval = Number(arg('--interval', '2'));
const nices = arg('--load-nice', '0,10,19').split(',').map(Number);
const TOKEN = 'bench-admin-token-0123456789abcdef';
const STAGES = ['total', 'queue', 'decode', 'det', 'rec', 'inference'] as const;
type Timings = Record<(typeof STAGES)[number], number>;

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });

async function start(dir: string, nice: number): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
      'serve',
      ...['--port', String(port), '--host', '127.0.0.1', '--data', join(dir, 'home')],
      ...['--admin-token-file', join(dir, 'token'), '--log-level', 'warn', '--load-nice', String(nice)],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, MALLOC_ARENA_MAX: '2' } },
  );
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode})`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, child };
    await new Promise((r) => setTimeout(r, 200));
  }
}

const page = (await makePages(1))[0]!.png;
console.log(
  `${await machine()}; a page every ${1000 / rate} ms, ${seconds} s without and ${seconds} s with a swap asked for every ${interval} s`,
);
for (const nice of nices) {
  const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-breakdown-'));
  await writeFile(join(dir, 'token'), TOKEN);
  const { url, child } = await start(dir, nice);
  try {
    const packages: Buffer[] = [];
    for (let i = 0; i < Math.ceil(seconds / interval) + 1; i++) {
      const src = await writeBundledSource(join(dir, `src-${i}`), `4.3.${i}`);
      const out = join(dir, `p-${i}.zip`);
      await pack(src, { signer: await keyFileSigner(join(dir, 'home', 'dev-key', 'signing.key')), out });
      packages.push(await readFile(out));
    }
    const phase = async (withSwaps: boolean) => {
      const rows: Timings[] = [];
      let errors = 0;
      let swaps = 0;
      let stop = false;
      const swapper = (async () => {
        while (withSwaps && !stop && swaps < packages.length) {
          const t = performance.now();
          const res = await fetch(`${url}/v1/models`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
            body: packages[swaps++]!,
          });
          await res.arrayBuffer();
          if (res.status !== 201) errors++;
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
      return { rows, errors, swaps };
    };
    await phase(false); // a first pass, counted nowhere
    const before = await phase(false);
    const during = await phase(true);
    const cell = (rows: Timings[], k: (typeof STAGES)[number]) =>
      `${median(rows.map((r) => r[k])).toFixed(0)}/${percentile(
        rows.map((r) => r[k]),
        99,
      ).toFixed(0)}`;
    console.log(`--load-nice ${nice}: p50/p99 ms (${STAGES.join(', ')})`);
    console.log(
      `  no swaps    ${STAGES.map((k) => cell(before.rows, k).padStart(10)).join('')}  errors ${before.errors}`,
    );
    console.log(
      `  with swaps  ${STAGES.map((k) => cell(during.rows, k).padStart(10)).join('')}  errors ${during.errors}, ${during.swaps} swaps`,
    );
    const p99 = (rows: Timings[]) =>
      percentile(
        rows.map((r) => r.total),
        99,
      );
    console.log(`  p99 with / without swaps: ${(p99(during.rows) / p99(before.rows)).toFixed(2)}x`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}
