/**
 * Hot swap figures: drop-to-serving latency split into detection, verification, load,
 * warm-up and switch (median of 20 swaps of the bundled 16 MB package repacked with new
 * versions, renamed into a watched folder); the switch alone; RSS after 10 swaps and after
 * --swaps (default 500) swaps.
 *
 * --no-keep-threads starts new inference threads for every version instead of reusing the
 * released one's.
 *
 *   npm run build && node --expose-gc dist/bench/swap.js [--swaps 500] [--workers 2] [--no-keep-threads]
 */
import { copyFile, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOcrModel, type ServedModel } from '../src/loaders/index.js';
import { ensureBundledPackage, keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { Registry, type RegistryEvent, StateStore, warmUp } from '../src/registry/index.js';
import { FolderSource } from '../src/sources/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { benchOptions } from './lib/options.js';
import { machine, median } from './lib/stats.js';

const options = benchOptions(
  'node --expose-gc dist/bench/swap.js',
  'Hot swap figures: drop-to-serving latency by stage, the switch alone, and RSS over many swaps.',
  {
    swaps: { type: 'number', default: 500, min: 10, help: 'swaps for the memory figure' },
    workers: { type: 'number', default: 2, min: 1, help: 'inference threads per version' },
    'no-keep-threads': { type: 'flag', help: 'start new inference threads for every version' },
  },
);
const { swaps, workers } = options;
const keepThreads = !options['no-keep-threads'];
const rssMiB = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-swap-'));
try {
  const home = join(dir, 'home');
  const bundled = await ensureBundledPackage(home);
  const trust = await TrustStore.load(bundled.trustPath);
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  const packages: string[] = [];
  for (let i = 0; i < 22; i++) {
    const v = `4.1.${i}`;
    const out = join(dir, `ppocr-${v}.zip`);
    await pack(await writeBundledSource(join(dir, `src-${v}`), v), { signer, out });
    await rm(join(dir, `src-${v}`), { recursive: true });
    packages.push(out);
  }
  const stage = { load: 0, warmup: 0 };
  const registry = await Registry.create({
    verify: (path, policy) => verifyPackage(path, { trust, keepBytes: true, ...policy }),
    load: async (pkg) => {
      const t = performance.now();
      const model = await loadOcrModel(pkg, { workers, keepThreads });
      stage.load = performance.now() - t;
      return model;
    },
    warmUp: async (model: ServedModel, pkg) => {
      const t = performance.now();
      await warmUp(model, pkg.manifest);
      stage.warmup = performance.now() - t;
    },
    store: new StateStore(join(dir, 'data', 'state.json')),
    packagesDir: join(dir, 'data', 'packages'),
  });
  const events: { e: RegistryEvent; at: number }[] = [];
  registry.on((e) => events.push({ e, at: performance.now() }));

  // 1. Drop to serving, through the watched folder.
  const watched = join(dir, 'models');
  const source = await FolderSource.create({
    dir: watched,
    settleMs: 1000,
    submit: (p) => registry.submit(p, { source: 'folder' }),
  });
  const rows: {
    detect: number;
    verify: number;
    load: number;
    warmup: number;
    switch: number;
    total: number;
  }[] = [];
  for (let i = 0; i < 21; i++) {
    const version = `4.1.${i}`;
    const staged = join(dir, `staged-${i}.zip`);
    await copyFile(packages[i]!, staged);
    events.length = 0;
    const dropped = performance.now();
    await rename(staged, join(watched, `drop-${i}.zip`));
    let servedAt = 0;
    while (!servedAt) {
      const lease = registry.lease('ppocr');
      if (lease?.version.version === version) servedAt = performance.now();
      lease?.release();
      if (!servedAt) await new Promise((r) => setImmediate(r));
    }
    const at = (type: string) => events.find((x) => x.e.type === type)!.at;
    if (i === 0) continue; // the first load also pays one-time costs (JIT, the warm-up image's decode)
    rows.push({
      detect: at('package-seen') - dropped,
      verify: at('loading') - at('verifying'),
      load: stage.load,
      warmup: stage.warmup,
      switch: servedAt - at('ready') - 0,
      total: servedAt - dropped,
    });
  }
  source.close();

  // 2. The switch alone: activation of a staged version to the first request answered by it.
  const switchTimes: number[] = [];
  const assignTimes: number[] = [];
  for (let i = 0; i < 10; i++) {
    const version = i % 2 === 0 ? '4.1.21' : '4.1.20';
    await registry.submit(packages[i % 2 === 0 ? 21 : 20]!, {
      source: 'bench',
      activate: false,
      allowDowngrade: true,
    });
    const t = performance.now();
    const activation = registry.activate('ppocr', version);
    // The assignment happens synchronously inside activate(); persisting follows.
    const lease = registry.lease('ppocr')!;
    assignTimes.push(performance.now() - t);
    await lease.model.read({ data: new Uint8Array(64 * 64 * 3).fill(255), width: 64, height: 64 });
    lease.release();
    switchTimes.push(performance.now() - t);
    await activation;
    await registry.unload('ppocr', i % 2 === 0 ? '4.1.20' : '4.1.21').catch(() => {});
  }

  // 3. Memory over many swaps: alternate two packages (reloaded each time; downgrades allowed).
  const rss: { at: number; mib: number }[] = [];
  for (let i = 1; i <= swaps; i++) {
    await registry.submit(packages[i % 2]!, { source: 'memory', allowDowngrade: true });
    await Promise.all(
      registry
        .versions()
        .filter((v) => v.state === 'draining')
        .map((v) => v.drain()),
    );
    if (i === 10 || i === swaps || i % 100 === 0) rss.push({ at: i, mib: rssMiB() });
  }
  await registry.close();

  console.log(
    `bench/swap: bundled 16 MB PP-OCRv4 package, ${workers} inference thread(s)${keepThreads ? '' : ', new for every version'}; ${await machine()}`,
  );
  console.log(`drop to serving, renamed into the watched folder, median of ${rows.length} swaps (ms):`);
  for (const k of ['detect', 'verify', 'load', 'warmup', 'switch', 'total'] as const) {
    console.log(
      `  ${k.padEnd(8)} ${median(rows.map((r) => r[k]))
        .toFixed(1)
        .padStart(8)}`,
    );
  }
  console.log(
    `switch alone: assignment to first lease ${median(assignTimes).toFixed(3)} ms (median), to the first request answered by the new version ${median(switchTimes).toFixed(1)} ms`,
  );
  console.log(`RSS: ${rss.map((r) => `${r.at} swaps ${r.mib.toFixed(0)} MiB`).join(', ')}`);
  const after10 = rss.find((r) => r.at === 10)!.mib;
  const last = rss[rss.length - 1]!.mib;
  console.log(`RSS growth from 10 to ${swaps} swaps: ${(last - after10).toFixed(0)} MiB (target: within 50)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
