/**
 * Memory per model, for sizing a replica: a server started on the bundled model (ppocr), then
 * given, one upload at a time, a model with the same graphs under another name (its sessions
 * shared), and models whose graphs differ in their bytes (a set of their own each). After each
 * it reads the server's resident set from /proc and what `GET /v1/models` reports for the new
 * version (loadBytes, sharedSessions). --runs fresh servers; medians.
 *
 *   npm run build && node dist/bench/memory-models.js [--runs 3] [--own 2]
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchOptions } from './lib/options.js';
import { bundledPackages, startServer, upload } from './lib/server.js';
import { machine, median } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/memory-models.js',
  'Memory per loaded model: the first, one sharing its graphs, and models with graphs of their own.',
  {
    runs: { type: 'number', default: 3, min: 1, help: 'fresh servers, each measured through every step' },
    own: {
      type: 'number',
      default: 2,
      min: 1,
      help: 'models with graphs of their own added after the shared one',
    },
  },
);
const TOKEN = 'bench-admin-token-0123456789abcdef';
const MiB = 1024 * 1024;

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) * 1024;
}

type Step = { label: string; rss: number; loadBytes?: number; sharedSessions?: number };
const runs: Step[][] = [];
const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-memory-'));
try {
  for (let r = 0; r < options.runs; r++) {
    const home = join(dir, `home-${r}`);
    await writeFile(join(dir, 'token'), TOKEN);
    const server = await startServer({ home, tokenFile: join(dir, 'token') });
    try {
      const pid = server.child.pid!;
      // Settle: the first load's transient allocations are returned.
      await new Promise((res) => setTimeout(res, 1000));
      const steps: Step[] = [{ label: 'ppocr (bundled, first model)', rss: await rssOf(pid) }];
      const shared = await bundledPackages(dir, home, ['1.0.0'], false, 'shared');
      const own = await Promise.all(
        Array.from({ length: options.own }, (_, i) =>
          bundledPackages(dir, home, [`2.0.${i}`], true, `own${i}`).then((p) => p[0]!),
        ),
      );
      const add = async (label: string, name: string, pkg: Buffer) => {
        const res = await upload(server.url, TOKEN, pkg);
        if (res.status !== 201) throw new Error(`${name}: ${res.status} ${res.text}`);
        await new Promise((res) => setTimeout(res, 1000));
        const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
          models: { name: string; versions: { memory?: { loadBytes: number; sharedSessions: number } }[] }[];
        };
        const memory = models.models.find((m) => m.name === name)?.versions[0]?.memory;
        steps.push({
          label,
          rss: await rssOf(pid),
          ...(memory ? { loadBytes: memory.loadBytes, sharedSessions: memory.sharedSessions } : {}),
        });
      };
      await add('+ a model sharing its graphs', 'shared', shared[0]!);
      for (let i = 0; i < own.length; i++)
        await add(`+ a model with graphs of its own (${i + 1})`, `own${i}`, own[i]!);
      runs.push(steps);
    } finally {
      await server.stop();
    }
  }
  console.log(
    `${await machine()}; ${options.runs} fresh servers (MALLOC_ARENA_MAX=2, as npm start); medians`,
  );
  console.log(
    `${'step'.padEnd(40)} ${'RSS'.padStart(9)} ${'grew by'.padStart(9)} ${'loadBytes'.padStart(10)} shared`,
  );
  for (let s = 0; s < runs[0]!.length; s++) {
    const at = runs.map((steps) => steps[s]!);
    const rss = median(at.map((x) => x.rss));
    const grew = s === 0 ? Number.NaN : median(runs.map((steps) => steps[s]!.rss - steps[s - 1]!.rss));
    const load = at[0]!.loadBytes === undefined ? Number.NaN : median(at.map((x) => x.loadBytes!));
    console.log(
      `${at[0]!.label.padEnd(40)} ${(rss / MiB).toFixed(0).padStart(6)} MiB ${Number.isNaN(grew) ? '        –' : `${(grew / MiB).toFixed(0).padStart(5)} MiB`} ${Number.isNaN(load) ? '         –' : `${(load / MiB).toFixed(0).padStart(6)} MiB`} ${at[0]!.sharedSessions ?? '–'}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
