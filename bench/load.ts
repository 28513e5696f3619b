/**
 * The server under load while versions are swapped in: autocannon against POST /v1/ocr with a
 * real page for --baseline seconds with no swap (the peer figure), and for --duration seconds
 * while a new signed version is uploaded through the admin API every --interval seconds
 * (verified, loaded, warmed up, switched in; the old one drains and is released).
 * Runs saturated (closed loop, --connections at once) and at a fixed rate (--rate, default
 * half the measured capacity: a server is not run flat out), each without and with swaps.
 * Prints requests/s, p50, p99 and errors, and the p99 of requests that overlapped a swap
 * window against the p99 of those that did not.
 *
 * --load-nice N is passed to the server (0: new versions load at serving priority; the server's
 * default, 10, loads them at low priority when it may raise it again); --no-keep-threads too
 * (each version then starts inference threads of its own).
 *
 *   npm run build && node dist/bench/load.js [--duration 60] [--interval 2] [--baseline 20] [--connections 4] [--rate N] [--load-nice N] [--no-keep-threads]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { makePages } from './lib/pages.js';
import { bundledPackages, startServer, upload } from './lib/server.js';
import { machine, median, percentile } from './lib/stats.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const duration = arg('--duration', 60);
const interval = arg('--interval', 2);
const baseline = arg('--baseline', 20);
const connections = arg('--connections', 4);
const serverArgs = [
  ...(process.argv.includes('--load-nice') ? ['--load-nice', String(arg('--load-nice', 10))] : []),
  ...(process.argv.includes('--no-keep-threads') ? ['--no-keep-threads'] : []),
];
const TOKEN = 'bench-admin-token-0123456789abcdef';

interface Sample {
  start: number;
  end: number;
  status: number;
}

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-load-'));
const home = join(dir, 'home');
await writeFile(join(dir, 'token'), TOKEN);
const server = await startServer({
  home,
  tokenFile: join(dir, 'token'),
  args: serverArgs,
  stdout: 'inherit',
});
const { url } = server;
try {
  const swaps = 2 * (Math.ceil(duration / interval) + 1);
  console.log(`packing ${swaps} versions to swap in...`);
  const packages = await bundledPackages(
    dir,
    home,
    Array.from({ length: swaps }, (_, i) => `4.2.${i}`),
  );
  const page = (await makePages(1))[0]!;

  const run = async (seconds: number, rate?: number): Promise<{ samples: Sample[]; errors: number }> => {
    const samples: Sample[] = [];
    let errors = 0;
    let finished: () => void = () => {};
    let failed: (error: Error) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
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
        ...(rate ? { overallRate: rate } : {}),
      },
      (error) => (error ? failed(error) : finished()),
    );
    instance.on('response', (_client, status, _bytes, responseTime) => {
      const end = performance.now();
      samples.push({ start: end - responseTime, end, status });
    });
    instance.on('reqError', () => errors++);
    await done;
    return { samples, errors };
  };

  const report = (label: string, samples: Sample[], seconds: number, errors: number) => {
    const ok = samples.filter((s) => s.status === 200).map((s) => s.end - s.start);
    const failed = samples.filter((s) => s.status !== 200).length + errors;
    const p99 = ok.length ? percentile(ok, 99) : Number.NaN;
    console.log(
      `${label.padEnd(34)} ${(ok.length / seconds).toFixed(2).padStart(6)} req/s  p50 ${median(ok).toFixed(0).padStart(5)} ms  p99 ${p99.toFixed(0).padStart(5)} ms  errors ${failed}`,
    );
    return { p99, failed, perSecond: ok.length / seconds };
  };

  let next = 0;
  /** A run of `seconds` while a new version is uploaded every `interval` seconds. */
  const withSwaps = async (label: string, rate?: number) => {
    const windows: { start: number; end: number }[] = [];
    let swapErrors = 0;
    let stop = false;
    const swapper = (async () => {
      while (!stop && next < packages.length) {
        const start = performance.now();
        const { status } = await upload(url, TOKEN, packages[next++]!);
        if (status !== 201) swapErrors++;
        // The old version drains and its threads stop just after the switch: part of the window.
        windows.push({ start, end: performance.now() + 250 });
        const wait = start + interval * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    const loaded = await run(duration, rate);
    stop = true;
    await swapper;
    const all = report(label, loaded.samples, duration, loaded.errors);
    const overlaps = (x: Sample) => windows.some((w) => x.start < w.end && x.end > w.start);
    const swapTime = windows.reduce((t, w) => t + (w.end - w.start), 0) / 1000;
    const inside = report('  overlapping a swap', loaded.samples.filter(overlaps), swapTime, 0);
    const outside = report(
      '  not overlapping one',
      loaded.samples.filter((x) => !overlaps(x)),
      duration - swapTime,
      0,
    );
    const window = median(windows.map((w) => w.end - w.start));
    // Swaps that take longer than the interval run back to back: then no request is outside
    // a window, and the peer is the run without swaps.
    const ratio = Number.isFinite(outside.p99)
      ? `p99 inside / outside: ${(inside.p99 / outside.p99).toFixed(2)}x`
      : 'every request overlapped a swap (swaps back to back)';
    console.log(
      `  ${windows.length} swaps (${swapErrors} failed), median window ${window.toFixed(0)} ms; ${ratio}`,
    );
    return { errors: all.failed + swapErrors, ratio: inside.p99 / outside.p99, p99: all.p99 };
  };

  console.log(
    `${await machine()}; ${connections} connections; a ${page.lines.length}-line page; server ${serverArgs.join(' ') || 'defaults'}`,
  );
  await run(2); // warm-up, counted nowhere
  const saturated = report('saturated, no swaps', ...(await runOf(baseline)));
  const rate = arg('--rate', Math.max(1, Math.round(saturated.perSecond * 0.5)));
  const steady = report(`${rate} req/s, no swaps`, ...(await runOf(baseline, rate)));
  const atRate = await withSwaps(`${rate} req/s, swap every ${interval} s`, rate);
  const flatOut = await withSwaps(`saturated, swap every ${interval} s`);
  console.log(
    `at ${rate} req/s (half of capacity): p99 with swaps / without ${(atRate.p99 / steady.p99).toFixed(2)}x, inside / outside swap windows ${Number.isFinite(atRate.ratio) ? `${atRate.ratio.toFixed(2)}x` : 'n/a'} (target <= 1.2)`,
  );
  console.log(
    `saturated: p99 with swaps / without ${(flatOut.p99 / saturated.p99).toFixed(2)}x, inside / outside ${Number.isFinite(flatOut.ratio) ? `${flatOut.ratio.toFixed(2)}x` : 'n/a'}`,
  );
  console.log(`errors in all runs: ${atRate.errors + flatOut.errors + steady.failed + saturated.failed}`);
  // Where a swap's time goes under load: the server's own stage histograms (mean per swap).
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const stat = (stage: string, what: 'sum' | 'count') =>
    Number(
      new RegExp(`^hotocr_package_load_seconds_${what}\\{stage="${stage}"\\} (\\S+)$`, 'm').exec(
        metrics,
      )?.[1],
    );
  console.log(
    `mean stage times under load: ${['verify', 'load', 'warmup', 'switch']
      .map((stage) => `${stage} ${((1000 * stat(stage, 'sum')) / stat(stage, 'count')).toFixed(1)} ms`)
      .join(', ')}`,
  );

  async function runOf(seconds: number, r?: number): Promise<[Sample[], number, number]> {
    const { samples, errors } = await run(seconds, r);
    return [samples, seconds, errors];
  }
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
