/**
 * What a swap costs in CPU on an idle server: --swaps versions uploaded one after another
 * through the admin API (each verified, loaded, warmed up and switched in; the one before
 * drains and is released), and the server's CPU time per swap, whole (every thread, from
 * /proc/<pid>/stat) and its main thread's alone (/proc/<pid>/task/<pid>/stat). Two kinds of
 * version: the same graphs repacked (a configuration change, a rollback: graphs optimized
 * before are reused) and new graphs in every version (each ONNX file's bytes marked, as a
 * retrained graph's would differ). With --peer DIR, another built checkout's server runs the
 * same uploads, alternated with this one's in every round; ratios are this build's over the
 * peer's. Medians over --rounds rounds; one server per case and round.
 *
 *   npm run build && node dist/bench/swap-cpu.js [--swaps 20] [--rounds 3] [--peer DIR]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchOptions } from './lib/options.js';
import { bundledPackages, startServer, upload } from './lib/server.js';
import { machine, median, processCpuMs } from './lib/stats.js';

const {
  swaps,
  rounds,
  peer: peerDir,
} = benchOptions('node dist/bench/swap-cpu.js', 'What a swap costs in CPU on an idle server.', {
  swaps: { type: 'number', default: 20, min: 1, help: 'swaps per server' },
  rounds: { type: 'number', default: 3, min: 1, help: 'rounds, every case once per round' },
  peer: { type: 'string', help: 'another built checkout, run alternately as the peer' },
});
const TOKEN = 'bench-admin-token-0123456789abcdef';

const builds: { name: string; main?: string }[] = [
  { name: 'this build' },
  ...(peerDir ? [{ name: 'peer', main: join(resolve(peerDir), 'dist', 'src', 'cli', 'main.js') }] : []),
];
const kinds = [
  { name: 'same graphs', newGraphs: false },
  { name: 'new graphs', newGraphs: true },
];

console.log(
  `${await machine()}; ${swaps} swaps per server on an idle server, ${rounds} rounds${peerDir ? `, this build and the peer (${peerDir}) alternated` : ''}`,
);
const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-swap-cpu-'));
const results = new Map<string, { whole: number[]; main: number[]; wall: number[] }>();
try {
  await writeFile(join(dir, 'token'), TOKEN);
  for (let r = 0; r < rounds; r++) {
    for (const kind of kinds) {
      for (const build of builds) {
        const home = join(
          dir,
          `home-${r}-${kind.newGraphs ? 'new' : 'same'}-${build.main ? 'peer' : 'this'}`,
        );
        const server = await startServer({
          home,
          tokenFile: join(dir, 'token'),
          ...(build.main ? { main: build.main } : {}),
        });
        try {
          const versions = Array.from({ length: swaps + 1 }, (_, i) => `4.6.${i}`);
          const packages = await bundledPackages(join(home, 'src'), home, versions, kind.newGraphs);
          // The first swap starts the hashing thread and the inference threads the next ones reuse.
          await upload(server.url, TOKEN, packages[0]!);
          const pid = server.child.pid!;
          const before = await processCpuMs(pid);
          const started = performance.now();
          for (const body of packages.slice(1)) {
            const { status, text } = await upload(server.url, TOKEN, body);
            if (status !== 201) throw new Error(`a swap was answered ${status}: ${text}`);
          }
          const wall = (performance.now() - started) / swaps;
          const after = await processCpuMs(pid);
          const whole = (after.whole - before.whole) / swaps;
          const main = (after.main - before.main) / swaps;
          const key = `${kind.name}|${build.name}`;
          const entry = results.get(key) ?? { whole: [], main: [], wall: [] };
          entry.whole.push(whole);
          entry.main.push(main);
          entry.wall.push(wall);
          results.set(key, entry);
          console.log(
            `round ${r + 1}, ${kind.name}, ${build.name}: ${whole.toFixed(0)} ms CPU per swap (main thread ${main.toFixed(0)} ms), ${wall.toFixed(0)} ms each`,
          );
        } finally {
          await server.stop();
        }
      }
    }
  }
  console.log('\nmedians per swap:');
  for (const kind of kinds) {
    for (const build of builds) {
      const e = results.get(`${kind.name}|${build.name}`)!;
      const peer = peerDir && build.main === undefined ? results.get(`${kind.name}|peer`) : undefined;
      const ratio = (mine: number[], theirs: number[] | undefined) =>
        theirs ? ` (${(median(mine) / median(theirs)).toFixed(2)}x the peer)` : '';
      console.log(
        `${kind.name.padEnd(12)} ${build.name.padEnd(10)} CPU ${median(e.whole).toFixed(0).padStart(5)} ms${ratio(e.whole, peer?.whole)}  main thread ${median(e.main).toFixed(0).padStart(4)} ms${ratio(e.main, peer?.main)}  swap ${median(e.wall).toFixed(0).padStart(5)} ms${ratio(e.wall, peer?.wall)}`,
      );
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
