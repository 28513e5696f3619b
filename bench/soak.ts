/**
 * The soak: `hotocr serve` as its own process under steady OCR load, with a new signed
 * version uploaded every --swap-every seconds and a bad package every --bad-every seconds
 * (in turn: a tampered graph uploaded, a package signed by an unknown key dropped into the
 * watched folder, a truncated ZIP dropped there), for --minutes. Samples the server's RSS,
 * open file descriptors and kept packages every 10 s, and prints the totals: requests and
 * their errors, swaps done and failed, bad packages refused (by code), and the growth of
 * RSS and descriptors from the first minutes to the last.
 *
 *   npm run build && node dist/bench/soak.js [--minutes 30] [--swap-every 5] [--bad-every 30] [--clients 2] [--json]
 *
 * Exits 1, naming what broke, unless every request was answered, every swap done, every bad
 * package refused, nothing left behind and the server stopped cleanly; the figures (rates,
 * memory, descriptors) are printed, not judged: they differ by machine.
 */
import { mkdtemp, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundledManifest, keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { startServer, upload } from './lib/server.js';
import { machine, median, percentile } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/soak.js',
  'The soak: the server under steady load with new versions and bad packages arriving; requests, swaps, refusals, RSS and descriptors.',
  {
    minutes: { type: 'number', default: 30, min: 0.1, help: 'how long' },
    'swap-every': { type: 'number', default: 5, min: 0.5, help: 'seconds between new versions' },
    'bad-every': { type: 'number', default: 30, min: 0.5, help: 'seconds between bad packages' },
    clients: { type: 'number', default: 2, min: 1, help: 'OCR clients, one request at a time each' },
    json: { type: 'flag', help: 'also print the totals as one line of JSON (SOAK {...})' },
  },
);
const { minutes, clients } = options;
const swapEvery = options['swap-every'];
const badEvery = options['bad-every'];
const TOKEN = 'soak-admin-token-0123456789abcdef';
const arenaMax = process.env.MALLOC_ARENA_MAX ?? '2';

const dir = await mkdtemp(join(tmpdir(), 'hotocr-soak-'));
const home = join(dir, 'home');
const models = join(dir, 'models');
const quarantine = join(dir, 'quarantine');
await writeFile(join(dir, 'token'), TOKEN);
// As `npm start` and the container image run it, unless the caller says otherwise.
const { url, child, stop } = await startServer({
  home,
  tokenFile: join(dir, 'token'),
  args: ['--models', models, '--quarantine', quarantine, '--settle-ms', '500'],
  mallocArenaMax: arenaMax,
});
let summary: Record<string, number> = {};

interface Sample {
  t: number;
  rssMiB: number;
  /** The main thread's V8 heap in use and memory held outside it (Buffers, ArrayBuffers), from /metrics. */
  heapMiB: number;
  externalMiB: number;
  fds: number;
  kept: number;
}

const metric = (text: string, name: string) =>
  Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 2 ** 20;

async function sample(t: number): Promise<Sample> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
  const fds = (await readdir(`/proc/${child.pid}/fd`)).length;
  const kept = (await readdir(join(home, 'packages')).catch(() => [])).length;
  const metrics = await fetch(`${url}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  return {
    t,
    rssMiB: rss,
    heapMiB: metric(metrics, 'nodejs_heap_size_used_bytes'),
    externalMiB: metric(metrics, 'nodejs_external_memory_bytes'),
    fds,
    kept,
  };
}

try {
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  const stranger = await keygen({ type: 'ed25519', out: join(dir, 'stranger') });
  const strangerSigner = await keyFileSigner(stranger.privateKeyPath);
  const src = await writeBundledSource(join(dir, 'src'), '5.0.0');
  let nextVersion = 0;
  let packing: Promise<unknown> = Promise.resolve();
  /** A freshly signed package of the next version (the bundled graphs), as bytes; one at a time. */
  const nextPackage = (sign = signer): Promise<Buffer> => {
    const made = packing.then(async () => {
      const version = `5.${Math.floor(nextVersion / 1000)}.${nextVersion % 1000}`;
      nextVersion++;
      await writeFile(join(src, 'config.json'), JSON.stringify(bundledManifest(version), null, 2));
      const out = join(dir, `${version}.zip`);
      await pack(src, { signer: sign, out });
      const bytes = await readFile(out);
      await rm(out);
      return bytes;
    });
    packing = made.catch(() => {});
    return made;
  };

  const page = (await makePages(1))[0]!;
  const started = performance.now();
  const deadline = started + minutes * 60_000;
  const latencies: number[] = [];
  let requests = 0;
  const failures = new Map<string, number>();
  const fail = (what: string) => failures.set(what, (failures.get(what) ?? 0) + 1);

  const load = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      try {
        const res = await fetch(`${url}/v1/ocr`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: page.png,
        });
        await res.arrayBuffer();
        requests++;
        if (res.status === 200) latencies.push(performance.now() - t);
        else fail(`HTTP ${res.status}`);
      } catch (error) {
        requests++;
        fail(`network: ${(error as Error).message}`);
      }
    }
  };

  let swaps = 0;
  let swapsFailed = 0;
  const swapMs: number[] = [];
  const swapper = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const { status, text } = await upload(url, TOKEN, await nextPackage());
      swaps++;
      swapMs.push(performance.now() - t);
      if (status !== 201) {
        swapsFailed++;
        console.error(`swap ${swaps} failed: ${status} ${text.slice(0, 300)}`);
      }
      const wait = t + swapEvery * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };

  const refused = new Map<string, number>();
  let bad = 0;
  let badAccepted = 0;
  const badder = async () => {
    await new Promise((r) => setTimeout(r, badEvery * 500));
    while (performance.now() + badEvery * 500 < deadline) {
      const t = performance.now();
      const kind = bad++ % 3;
      if (kind === 0) {
        // A graph changed after signing: CHECKSUM_MISMATCH, through the admin API.
        const bytes = await nextPackage();
        const at = bytes.indexOf(Buffer.from('rec.onnx')) + 2000;
        bytes[at] = bytes[at]! ^ 0xff;
        const { status, text } = await upload(url, TOKEN, bytes);
        const body = JSON.parse(text) as { error?: { code: string } };
        if (status < 400) badAccepted++;
        else refused.set(body.error!.code, (refused.get(body.error!.code) ?? 0) + 1);
      } else {
        // Dropped into the watched folder: signed by an unknown key, or cut short.
        const bytes =
          kind === 1 ? await nextPackage(strangerSigner) : (await nextPackage()).subarray(0, 100_000);
        const name = `bad-${bad}.zip`;
        await writeFile(join(dir, name), bytes);
        await rename(join(dir, name), join(models, name));
      }
      const wait = t + badEvery * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };

  const samples: Sample[] = [await sample(0)];
  const sampler = (async () => {
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10_000));
      samples.push(await sample((performance.now() - started) / 1000));
    }
  })();

  console.log(
    `soak: ${minutes} min, ${clients} OCR clients, a swap every ${swapEvery} s, a bad package every ${badEvery} s; server with MALLOC_ARENA_MAX=${arenaMax || '(unset)'}; ${await machine()}`,
  );
  await Promise.all([...Array.from({ length: clients }, load), swapper(), badder(), sampler]);
  // Give the last dropped package time to be looked at, then count the quarantine.
  await new Promise((r) => setTimeout(r, 3000));
  const quarantined = (await readdir(quarantine).catch(() => [])).filter((f) => f.endsWith('.zip'));
  const reasons = await Promise.all(
    (await readdir(quarantine).catch(() => []))
      .filter((f) => f.endsWith('.reason.json'))
      .map(async (f) => (JSON.parse(await readFile(join(quarantine, f), 'utf8')) as { code: string }).code),
  );
  for (const code of reasons) refused.set(code, (refused.get(code) ?? 0) + 1);
  const leftUploads = (await readdir(join(home, 'uploads')).catch(() => [])).length;
  const leftInFolder = (await readdir(models)).length;

  const window = (from: number, to: number) => samples.filter((s) => s.t >= from && s.t <= to);
  const span = Math.min(300, (minutes * 60) / 3);
  const early = window(60, 60 + span);
  const late = window(minutes * 60 - span, minutes * 60 + 1);
  const med = (xs: Sample[], k: 'rssMiB' | 'fds' | 'heapMiB' | 'externalMiB') => median(xs.map((s) => s[k]));
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `requests ${requests} (${(requests / seconds).toFixed(2)}/s), failed ${[...failures.values()].reduce((a, b) => a + b, 0)} ${JSON.stringify(Object.fromEntries(failures))}; p50 ${latencies.length ? median(latencies).toFixed(0) : '-'} ms, p99 ${latencies.length ? percentile(latencies, 99).toFixed(0) : '-'} ms`,
  );
  console.log(
    `swaps ${swaps}, failed ${swapsFailed}; upload to active: median ${median(swapMs).toFixed(0)} ms, max ${Math.max(...swapMs).toFixed(0)} ms`,
  );
  console.log(
    `bad packages ${bad}: accepted ${badAccepted}, refused ${JSON.stringify(Object.fromEntries(refused))}, quarantined ${quarantined.length}; left in the watched folder ${leftInFolder}, in uploads ${leftUploads}`,
  );
  console.log(
    `RSS MiB: start ${samples[0]!.rssMiB.toFixed(0)}, median of minutes 1-${((60 + span) / 60).toFixed(0)} ${med(early, 'rssMiB').toFixed(0)}, of the last ${(span / 60).toFixed(0)} min ${med(late, 'rssMiB').toFixed(0)}, max ${Math.max(...samples.map((s) => s.rssMiB)).toFixed(0)}; growth ${(med(late, 'rssMiB') - med(early, 'rssMiB')).toFixed(0)} MiB (target within 50)`,
  );
  console.log(
    `main-thread heap MiB: early ${med(early, 'heapMiB').toFixed(0)}, late ${med(late, 'heapMiB').toFixed(0)}; external: early ${med(early, 'externalMiB').toFixed(0)}, late ${med(late, 'externalMiB').toFixed(0)}`,
  );
  const kinds = new Map<string, number>();
  for (const fd of await readdir(`/proc/${child.pid}/fd`)) {
    const target = await readlink(`/proc/${child.pid}/fd/${fd}`).catch(() => '?');
    const kind = target.replace(/\[\d+\]/, '').replace(/^\/.*/, 'file');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  console.log(`descriptors open at the end: ${JSON.stringify(Object.fromEntries(kinds))}`);
  summary = {
    requests,
    failed: [...failures.values()].reduce((a, b) => a + b, 0),
    swaps,
    swapsFailed,
    bad,
    badAccepted,
    refused: [...refused.values()].reduce((a, b) => a + b, 0),
    leftUploads,
    leftInFolder,
    keptMax: Math.max(...samples.map((s) => s.kept)),
  };
  console.log(
    `file descriptors: start ${samples[0]!.fds}, early median ${med(early, 'fds')}, late median ${med(late, 'fds')}, max ${Math.max(...samples.map((s) => s.fds))}; kept packages at the end ${samples.at(-1)!.kept} (max ${Math.max(...samples.map((s) => s.kept))})`,
  );
} finally {
  const code = await stop();
  console.log(`server exit code after SIGTERM: ${code}`);
  if (options.json) console.log(`SOAK ${JSON.stringify({ ...summary, exitCode: code })}`);
  await rm(dir, { recursive: true, force: true });
  const broken = [
    summary.requests === undefined && 'the run did not finish',
    summary.requests === 0 && 'no request was answered',
    summary.failed! > 0 && `${summary.failed} requests failed`,
    summary.swapsFailed! > 0 && `${summary.swapsFailed} swaps failed`,
    summary.badAccepted! > 0 && `${summary.badAccepted} bad packages were accepted`,
    summary.refused !== summary.bad && `${summary.refused} of ${summary.bad} bad packages were refused`,
    summary.leftUploads! > 0 && `${summary.leftUploads} uploads left behind`,
    summary.leftInFolder! > 0 && `${summary.leftInFolder} files left in the watched folder`,
    summary.keptMax! > 11 && `${summary.keptMax} packages kept (history of 10, and the one loading)`,
    code !== 0 && `the server exited with ${code}`,
  ].filter(Boolean);
  if (broken.length > 0) {
    console.error(`soak failed: ${broken.join('; ')}`);
    process.exitCode = 1;
  } else
    console.log(
      'soak: every request answered, every swap done, every bad package refused, nothing left behind',
    );
}
