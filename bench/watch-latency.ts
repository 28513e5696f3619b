/**
 * How fast a package renamed into the watched folder is seen: Node's fs.watch (inotify on
 * Linux), which hotocr uses, against chokidar (the usual library), in the same run.
 *
 *   npm run build && node dist/bench/watch-latency.js [--runs 50]
 */
import { watch } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import chokidar from 'chokidar';
import { benchOptions } from './lib/options.js';
import { machine, median, percentile } from './lib/stats.js';

const { runs } = benchOptions(
  'node dist/bench/watch-latency.js',
  "How fast a package renamed into the watched folder is seen: Node's fs.watch against chokidar.",
  { runs: { type: 'number', default: 50, min: 1, help: 'files renamed in, per watcher' } },
);
const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-watch-'));

/** Renames files into `folder` one by one; `seen` resolves when the watcher reports each. */
async function measure(
  folder: string,
  start: (onSeen: (name: string) => void) => Promise<() => Promise<void>>,
): Promise<number[]> {
  await mkdir(folder, { recursive: true });
  let waiting: { name: string; resolve: () => void } | undefined;
  const stop = await start((name) => {
    if (waiting && name.endsWith(waiting.name)) waiting.resolve();
  });
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const name = `pkg-${r}.zip`;
    const staged = join(dir, `staged-${r}.zip`);
    await writeFile(staged, 'package bytes');
    const seen = new Promise<void>((resolve) => {
      waiting = { name, resolve };
    });
    const t = performance.now();
    await rename(staged, join(folder, name));
    await seen;
    times.push(performance.now() - t);
    await new Promise((res) => setTimeout(res, 20));
  }
  await stop();
  return times;
}

try {
  const fsWatch = await measure(join(dir, 'fs-watch'), async (onSeen) => {
    const w = watch(join(dir, 'fs-watch'), (_event, name) => name && onSeen(name));
    return async () => w.close();
  });
  const chokidarTimes = await measure(join(dir, 'chokidar'), async (onSeen) => {
    const w = chokidar.watch(join(dir, 'chokidar'), { ignoreInitial: true });
    await new Promise<void>((res) => w.once('ready', () => res()));
    w.on('add', (path) => onSeen(path));
    return () => w.close();
  });
  console.log(`bench/watch-latency: ${runs} files renamed into a watched folder; ${await machine()}`);
  console.log('watcher            median ms   p95 ms');
  for (const [label, t] of [
    ['fs.watch', fsWatch],
    ['chokidar 4', chokidarTimes],
  ] as const) {
    console.log(
      `${label.padEnd(18)} ${median(t).toFixed(2).padStart(9)} ${percentile(t, 95).toFixed(2).padStart(8)}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
