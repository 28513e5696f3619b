/**
 * What optimizing a graph costs when a version loads, and what opening onnxruntime-node's
 * optimized form of it instead saves. Two parts, each alternating its cases in every one of
 * --rounds rounds (medians reported, so a noisy machine's drift lands on every case alike):
 *
 * - Per graph of the bundled model, on this thread: opening it with optimization (as every
 *   thread did before optimized graphs were kept), opening it with optimization while saving
 *   the optimized form (what one thread of a version with new graphs does), and opening that
 *   form with none (what the other threads, and later versions of the same graph, do). Also
 *   checks that both sessions give the same outputs for the same input, value for value.
 * - A whole load, InferenceThreads.load with 2 inference threads: the CPU time of the process
 *   (every thread) and the wall time, for a package without digests (nothing kept or
 *   reused: the peer), with digests never seen (new graphs: one thread optimizes, the other
 *   opens the optimized form) and with digests seen before (both open the optimized form).
 *
 *   npm run build && node dist/bench/graph-open.js [--rounds 7]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceThreads, type LoaderPackage } from '../src/loaders/index.js';
import { openSession } from '../src/loaders/onnxruntime-node.js';
import { entryDigests } from '../src/verify/index.js';
import { verifiedBundled } from '../test/helpers/bundled.js';
import { benchOptions } from './lib/options.js';
import { machine, median } from './lib/stats.js';

/** The inference threads these loads run on, as a server's own. */
const threads = new InferenceThreads();

const { rounds } = benchOptions(
  'node dist/bench/graph-open.js',
  "What optimizing a graph costs when a version loads, and what opening onnxruntime-node's optimized form saves.",
  { rounds: { type: 'number', default: 7, min: 1, help: 'rounds, every case once per round' } },
);
/** An input of each graph's shape: a page for the detector, a batch of 6 lines for the others. */
const SHAPES = { det: [1, 3, 960, 736], rec: [6, 3, 48, 320], cls: [6, 3, 48, 192] } as const;
const SESSION = { intraOpThreads: 1 };

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-graph-open-'));
try {
  const pkg = await verifiedBundled(join(dir, 'home'));
  console.log(
    `${await machine()}; ${rounds} rounds, cases alternated in each; one onnxruntime thread per session`,
  );

  console.log('\nopening one graph (median ms):');
  console.log('graph  optimizing  optimizing+saving  optimized form  optimized/optimizing  same outputs');
  for (const role of ['det', 'rec', 'cls'] as const) {
    const bytes = pkg.files.get(pkg.manifest.graphs[role]!)!;
    const times = { optimizing: [] as number[], saving: [] as number[], optimized: [] as number[] };
    let same = true;
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      const plain = await openSession(role, bytes, SESSION);
      times.optimizing.push(performance.now() - t);
      const path = join(dir, `${role}-${r}.onnx`);
      t = performance.now();
      const saving = await openSession(role, bytes, SESSION, { saveTo: path });
      times.saving.push(performance.now() - t);
      const form = await readFile(path);
      t = performance.now();
      const optimized = await openSession(role, form, SESSION, { optimized: true });
      times.optimized.push(performance.now() - t);
      if (r === 0) {
        const dims: readonly number[] = SHAPES[role];
        const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) =>
          Math.sin(i * 0.37),
        );
        const [a, b] = await Promise.all(
          [plain, optimized].map(async (s) => (await s.run({ data, dims: [...dims] })).data),
        );
        same = a!.length === b!.length && a!.every((v, i) => v === b![i]);
      }
      await Promise.all([plain.release(), saving.release(), optimized.release()]);
      await rm(path);
    }
    const [o, s, f] = [median(times.optimizing), median(times.saving), median(times.optimized)];
    console.log(
      `${role.padEnd(5)}  ${o.toFixed(0).padStart(10)}  ${s.toFixed(0).padStart(17)}  ${f.toFixed(0).padStart(14)}  ${(f / o).toFixed(2).padStart(19)}x  ${same ? 'yes' : 'NO'}`,
    );
  }

  console.log(
    '\na whole load, 2 inference threads (median of the process CPU, all threads, and of wall time):',
  );
  const digests = entryDigests(pkg);
  let fresh = 0;
  /** The same bytes under digests never seen before: what a version with new graphs meets. */
  const unseen = (): LoaderPackage => ({
    ...pkg,
    digests: new Map(
      [...digests].map(([name, d]) => [name, `${d.slice(0, 56)}${(fresh++).toString(16).padStart(8, '0')}`]),
    ),
  });
  const cases: [string, () => LoaderPackage][] = [
    ['no digests (every thread optimizes)', () => pkg],
    ['new graphs (one thread optimizes)', unseen],
    ['graphs seen before (none optimizes)', () => ({ ...pkg, digests })],
  ];
  // The runtime's first sessions start its process-wide threads, and the pool's threads start: not counted.
  await (await threads.load({ ...pkg, digests }, { workers: 2, intraOpThreads: 1 })).release();
  const cpu = new Map(cases.map(([name]) => [name, [] as number[]]));
  const wall = new Map(cases.map(([name]) => [name, [] as number[]]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, make] of cases) {
      const p = make();
      const before = process.cpuUsage();
      const t = performance.now();
      const pool = await threads.load(p, { workers: 2, intraOpThreads: 1 });
      wall.get(name)!.push(performance.now() - t);
      const used = process.cpuUsage(before);
      cpu.get(name)!.push((used.user + used.system) / 1000);
      await pool.release();
    }
  }
  const peer = median(cpu.get(cases[0]![0])!);
  const peerWall = median(wall.get(cases[0]![0])!);
  for (const [name] of cases) {
    const c = median(cpu.get(name)!);
    const w = median(wall.get(name)!);
    console.log(
      `${name.padEnd(37)} CPU ${c.toFixed(0).padStart(4)} ms (${(c / peer).toFixed(2)}x)  wall ${w.toFixed(0).padStart(4)} ms (${(w / peerWall).toFixed(2)}x)`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
