/**
 * The server under load while versions are swapped in: autocannon against POST /v1/ocr with a
 * real page, first for --baseline seconds with no swap (the peer figure), then for --duration
 * seconds while a new signed version is uploaded through the admin API every --interval
 * seconds (verified, loaded, warmed up, switched in; the old one drains and is released).
 * Prints requests/s, p50, p99 and errors for both phases, and p99 of the requests that
 * overlapped a swap window against the p99 of those that did not.
 *
 *   npm run build && node dist/bench/load.js [--duration 60] [--interval 2] [--baseline 20] [--connections 4]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { makePages } from './lib/pages.js';
import { machine, median, percentile } from './lib/stats.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const duration = arg('--duration', 60);
const interval = arg('--interval', 2);
const baseline = arg('--baseline', 20);
const connections = arg('--connections', 4);
const TOKEN = 'bench-admin-token-0123456789abcdef';

interface Sample {
  start: number;
  end: number;
  status: number;
}

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-load-'));
const home = join(dir, 'home');
await writeFile(join(dir, 'token'), TOKEN);
const child = spawn(
  process.execPath,
  [
    join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
    'serve',
    ...['--port', '0', '--host', '127.0.0.1', '--data', home, '--admin-token-file', join(dir, 'token')],
    ...['--log-level', 'warn'],
  ],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HOTOCR_LOG_LEVEL: 'info' } },
);
try {
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });

  const swaps = Math.ceil(duration / interval) + 1;
  console.log(`packing ${swaps} versions to swap in...`);
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  const packages: Buffer[] = [];
  for (let i = 0; i < swaps; i++) {
    const v = `4.2.${i}`;
    const out = join(dir, `ppocr-${v}.zip`);
    await pack(await writeBundledSource(join(dir, `src-${v}`), v), { signer, out });
    packages.push(await readFile(out));
    await rm(out);
    await rm(join(dir, `src-${v}`), { recursive: true });
  }
  const page = (await makePages(1))[0]!;

  const run = async (
    seconds: number,
  ): Promise<{ samples: Sample[]; errors: number; result: autocannon.Result }> => {
    const samples: Sample[] = [];
    let errors = 0;
    let finished: (result: autocannon.Result) => void = () => {};
    let failed: (error: Error) => void = () => {};
    const done = new Promise<autocannon.Result>((resolve, reject) => {
      finished = resolve;
      failed = reject;
    });
    const instance = autocannon(
      {
        url: `${url}/v1/ocr`,
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page.png,
        connections,
        duration: seconds,
        timeout: 30,
      },
      (error, result) => (error ? failed(error) : finished(result)),
    );
    instance.on('response', (_client, status, _bytes, responseTime) => {
      const end = performance.now();
      samples.push({ start: end - responseTime, end, status });
    });
    instance.on('reqError', () => errors++);
    const result = await done;
    return { samples, errors, result };
  };

  const describe = (label: string, samples: Sample[], seconds: number, errors: number) => {
    const ok = samples.filter((s) => s.status === 200).map((s) => s.end - s.start);
    const failed = samples.filter((s) => s.status !== 200).length + errors;
    console.log(
      `${label.padEnd(22)} ${(ok.length / seconds).toFixed(2).padStart(6)} req/s  p50 ${median(ok).toFixed(0).padStart(5)} ms  p99 ${percentile(ok, 99).toFixed(0).padStart(5)} ms  errors ${failed}`,
    );
    return { p99: percentile(ok, 99), failed };
  };

  console.log(`${await machine()}; ${connections} connections; a ${page.lines.length}-line page`);
  // One warm-up second so the first requests' costs are not in either phase.
  await run(1);
  const quiet = await run(baseline);
  const base = describe('no swaps', quiet.samples, baseline, quiet.errors);

  const windows: { start: number; end: number }[] = [];
  let swapErrors = 0;
  let stop = false;
  const swapper = (async () => {
    for (const pkg of packages) {
      if (stop) break;
      const start = performance.now();
      const res = await fetch(`${url}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
        body: pkg,
      });
      await res.arrayBuffer();
      if (res.status !== 201) swapErrors++;
      // The old version drains and its threads stop just after the switch: part of the window.
      windows.push({ start, end: performance.now() + 250 });
      const wait = start + interval * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const loaded = await run(duration);
  stop = true;
  await swapper;
  const all = describe(`swap every ${interval} s`, loaded.samples, duration, loaded.errors);
  const overlaps = (s: Sample) => windows.some((w) => s.start < w.end && s.end > w.start);
  const inside = loaded.samples.filter(overlaps);
  const outside = loaded.samples.filter((s) => !overlaps(s));
  const swapTime = windows.reduce((t, w) => t + (w.end - w.start), 0) / 1000;
  const inWin = describe('  inside swap windows', inside, swapTime, 0);
  const outWin = describe('  outside them', outside, duration - swapTime, 0);
  console.log(
    `${windows.length} swaps (${swapErrors} failed), median window ${median(windows.map((w) => w.end - w.start)).toFixed(0)} ms`,
  );
  console.log(
    `p99 inside / outside swap windows: ${(inWin.p99 / outWin.p99).toFixed(2)}x (target <= 1.2); p99 with swaps / without: ${(all.p99 / base.p99).toFixed(2)}x; errors: ${all.failed + base.failed + swapErrors}`,
  );
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await rm(dir, { recursive: true, force: true });
}
