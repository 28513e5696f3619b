/**
 * The server under load while versions are swapped in: autocannon against POST /v1/ocr with a
 * real page, in blocks that alternate between no swap (the peer) and a new signed version
 * uploaded through the admin API every --interval seconds (verified, loaded, warmed up,
 * switched in; the old one drains and is released). Alternating blocks of the same run keep
 * a noisy machine's drift out of the ratio (two servers started minutes apart here once read
 * the same pages with medians 30 % apart). --duration seconds of each, in --blocks blocks of
 * each.
 * Runs saturated (closed loop, --connections at once) and at a fixed rate (--rate, default
 * half the measured capacity: a server is not run flat out). Prints requests/s, p50, p99 and
 * errors of each, and within the swap blocks the p99 of requests that overlapped a swap window
 * against the p99 of those that did not, and against the p99 of the blocks without swaps (the
 * requests outside windows are only those short enough to fit between two, a peer biased low).
 *
 * --refused-uploads: the swap blocks upload packages signed by a key the server does not trust,
 * so each is received, read and hashed, then refused (SIGNATURE_INVALID) and never loaded: what
 * the upload and verification cost serving, apart from loading.
 *
 * --new-graphs: every version's graphs differ in their bytes (a mark in each ONNX file's
 * doc_string), so that none opens from the graphs the server optimized for an earlier version:
 * what a swap of retrained graphs costs. Without it versions repack the same graphs, as a
 * configuration change or a rollback would.
 *
 * --upload-seconds S spreads each upload's body evenly over S seconds (256 KiB at a time), as a
 * client on a slower link sends it, where by default it arrives at loopback speed at once.
 *
 * --load-nice N is passed to the server (0: new versions load at serving priority; the server's
 * default, 10, loads them at low priority when it may raise it again); --no-keep-threads too
 * (each version then starts inference threads of its own).
 *
 *   npm run build && node dist/bench/load.js [--duration 60] [--blocks 6] [--interval 2] [--connections 4] [--rate N] [--load-nice N] [--no-keep-threads] [--refused-uploads] [--new-graphs] [--upload-seconds S]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { keygen } from '../src/pack/index.js';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { bundledPackages, startServer, upload } from './lib/server.js';
import { machine, median, percentile, processCpuMs } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/load.js',
  'The server under load while versions are swapped in, in alternating blocks without and with swaps: requests/s, p50, p99, errors.',
  {
    duration: { type: 'number', default: 60, min: 1, help: 'seconds without swaps, and as many with them' },
    blocks: { type: 'number', default: 6, min: 1, help: 'blocks each way, alternating' },
    interval: { type: 'number', default: 2, min: 0.1, help: 'seconds between uploads' },
    connections: { type: 'number', default: 4, min: 1, help: 'autocannon connections' },
    rate: {
      type: 'number',
      min: 0.1,
      help: 'requests/s of the fixed-rate part (default: half the measured capacity)',
    },
    'load-nice': { type: 'number', min: 0, help: "passed to the server (default: the server's own, 10)" },
    'no-keep-threads': { type: 'flag', help: 'passed to the server' },
    'refused-uploads': {
      type: 'flag',
      help: 'upload packages signed by an untrusted key: refused, never loaded',
    },
    'new-graphs': { type: 'flag', help: 'give every version graphs of its own bytes' },
    'upload-seconds': {
      type: 'number',
      min: 0,
      help: 'spread each upload of the swap blocks over this many seconds (default: at once)',
    },
  },
);
const { duration, interval, connections } = options;
const blocks = Math.round(options.blocks);
const block = duration / blocks;
const serverArgs = [
  ...(options['load-nice'] !== undefined ? ['--load-nice', String(options['load-nice'])] : []),
  ...(options['no-keep-threads'] ? ['--no-keep-threads'] : []),
];
const refused = options['refused-uploads'];
const newGraphs = options['new-graphs'];
const uploadSeconds = options['upload-seconds'];
/** Uploads timed one after another on the idle server, for the CPU one costs. */
const COST_UPLOADS = 5;
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
  const swaps = 2 * (Math.ceil(duration / interval) + blocks) + COST_UPLOADS;
  console.log(
    `packing ${swaps} versions to ${refused ? 'upload (signed by an untrusted key)' : 'swap in'}...`,
  );
  // bundledPackages signs with the key under `<home>/dev-key`: the server's own, or a stranger's.
  const signingHome = refused ? join(dir, 'stranger') : home;
  if (refused) await keygen({ type: 'ed25519', out: join(signingHome, 'dev-key') });
  const packages = await bundledPackages(
    dir,
    signingHome,
    Array.from({ length: swaps }, (_, i) => `4.2.${i}`),
    newGraphs,
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
      `${label.padEnd(34)} ${(seconds > 0 ? ok.length / seconds : 0).toFixed(2).padStart(6)} req/s  p50 ${median(ok).toFixed(0).padStart(5)} ms  p99 ${p99.toFixed(0).padStart(5)} ms  errors ${failed}`,
    );
    return { p99, failed, perSecond: seconds > 0 ? ok.length / seconds : 0 };
  };

  let next = 0;
  /** One block while a new version is uploaded every `interval` seconds, with the swap windows. */
  const swapBlock = async (rate?: number) => {
    const windows: { start: number; end: number }[] = [];
    let swapErrors = 0;
    let stop = false;
    const swapper = (async () => {
      while (!stop && next < packages.length) {
        const start = performance.now();
        const { status } = await upload(url, TOKEN, packages[next++]!, uploadSeconds);
        if (status !== (refused ? 422 : 201)) swapErrors++;
        // The old version drains and its threads are released just after the switch: part of the window.
        windows.push({ start, end: performance.now() + 250 });
        const wait = start + interval * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    const { samples, errors } = await run(block, rate);
    stop = true;
    await swapper;
    return { samples, errors, windows, swapErrors };
  };

  /** `blocks` blocks without swaps and as many with them, alternating; both sides' figures. */
  const compare = async (label: string, rate?: number) => {
    const quiet: Sample[] = [];
    const swapping: Sample[] = [];
    const windows: { start: number; end: number }[] = [];
    let quietErrors = 0;
    let swappingErrors = 0;
    let swapErrors = 0;
    for (let b = 0; b < blocks; b++) {
      const q = await run(block, rate);
      quiet.push(...q.samples);
      quietErrors += q.errors;
      const s = await swapBlock(rate);
      swapping.push(...s.samples);
      swappingErrors += s.errors;
      windows.push(...s.windows);
      swapErrors += s.swapErrors;
      // The block's last upload was answered after its requests ended; let its old version go.
      await new Promise((r) => setTimeout(r, 1000));
    }
    const without = report(`${label}, no swaps`, quiet, duration, quietErrors);
    const all = report(`${label}, a swap every ${interval} s`, swapping, duration, swappingErrors);
    const overlaps = (x: Sample) => windows.some((w) => x.start < w.end && x.end > w.start);
    const swapTime = Math.min(duration, windows.reduce((t, w) => t + (w.end - w.start), 0) / 1000);
    const inside = report('  overlapping a swap', swapping.filter(overlaps), swapTime, 0);
    const outside = report(
      '  not overlapping one',
      swapping.filter((x) => !overlaps(x)),
      duration - swapTime,
      0,
    );
    const window = median(windows.map((w) => w.end - w.start));
    // Swaps that take longer than the interval run back to back: then few or no requests are
    // outside a window, and the peer is the blocks without swaps.
    const insideRatio = Number.isFinite(outside.p99) ? inside.p99 / outside.p99 : Number.NaN;
    // Requests outside a window are those short enough to fit between two: a peer biased
    // low. The blocks without swaps have no such selection.
    const insideQuietRatio = inside.p99 / without.p99;
    console.log(
      `  ${windows.length} ${refused ? 'uploads refused' : 'swaps'} (${swapErrors} ${refused ? 'answered otherwise' : 'failed'}), median window ${window.toFixed(0)} ms; ${
        Number.isFinite(insideRatio)
          ? `p99 inside / outside windows: ${insideRatio.toFixed(2)}x`
          : 'every request overlapped a swap (swaps back to back)'
      }`,
    );
    console.log(
      `  p99 with swaps / without: ${(all.p99 / without.p99).toFixed(2)}x; inside windows / blocks without swaps: ${insideQuietRatio.toFixed(2)}x; req/s with / without: ${(all.perSecond / without.perSecond).toFixed(2)}`,
    );
    return {
      errors: all.failed + without.failed + swapErrors,
      ratio: all.p99 / without.p99,
      insideRatio,
      insideQuietRatio,
      perSecond: without.perSecond,
    };
  };

  console.log(
    `${await machine()}; ${connections} connections; a ${page.lines.length}-line page; server ${serverArgs.join(' ') || 'defaults'}${refused ? '; uploads refused, never loaded' : ''}${newGraphs ? "; new graphs' bytes in every version" : ''}${uploadSeconds ? `; each upload spread over ${uploadSeconds} s` : ''}; ${blocks} blocks of ${block} s without swaps and as many with, alternating`,
  );
  // What one upload costs in CPU with no other load: the server's whole process (all its
  // threads, from /proc), its main thread alone (whose id is the process's), and this
  // process's (the uploader), which shares the cores.
  const pid = server.child.pid!;
  const before = await processCpuMs(pid);
  const own0 = process.cpuUsage();
  for (let i = 0; i < COST_UPLOADS; i++) await upload(url, TOKEN, packages[next++]!);
  const own = process.cpuUsage(own0);
  const after = await processCpuMs(pid);
  console.log(
    `CPU per ${refused ? 'refused upload' : 'swap'} on the idle server (${COST_UPLOADS} one after another): server ${(after.whole - before.whole) / COST_UPLOADS} ms (its main thread ${(after.main - before.main) / COST_UPLOADS} ms), uploader ${((own.user + own.system) / 1000 / COST_UPLOADS).toFixed(0)} ms`,
  );
  await run(2); // warm-up, counted nowhere
  const capacity = report('saturated (to set the rate)', ...(await runOf(block)));
  const rate = options.rate ?? Math.max(1, Math.round(capacity.perSecond * 0.5));
  const atRate = await compare(`${rate} req/s`, rate);
  const flatOut = await compare('saturated');
  const both = (r: { ratio: number; insideRatio: number; insideQuietRatio: number }) =>
    `p99 with swaps / without ${r.ratio.toFixed(2)}x, inside / outside swap windows ${Number.isFinite(r.insideRatio) ? `${r.insideRatio.toFixed(2)}x` : 'n/a'}, inside windows / blocks without swaps ${r.insideQuietRatio.toFixed(2)}x`;
  console.log(`at ${rate} req/s (about half of capacity): ${both(atRate)} (target <= 1.2)`);
  console.log(`saturated: ${both(flatOut)}`);
  console.log(`errors in all runs: ${atRate.errors + flatOut.errors + capacity.failed}`);
  // Where a swap's time goes under load: the server's own stage histograms (mean per swap).
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const stat = (stage: string, what: 'sum' | 'count') =>
    Number(
      new RegExp(`^hotocr_package_load_seconds_${what}\\{name="ppocr",stage="${stage}"\\} (\\S+)$`, 'm').exec(
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
