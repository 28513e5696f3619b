/**
 * A fleet of replicas following one repository of a real CNCF Distribution registry
 * (Debian's docker-registry) on loopback, its notifications (pulls included: the worst case)
 * pointed at one replica, polling once a day: what an idle fleet asks of the registry, and
 * how long a push takes to reach every replica through the webhook alone.
 *
 *   npm run build && node dist/bench/fleet.js [--replicas 3] [--idle-seconds 60] [--pushes 5]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fleet } from '../test/helpers/fleet.js';
import { benchOptions } from './lib/options.js';
import { machine, median } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/fleet.js',
  'An idle fleet against a real registry: manifest requests per window, and push-to-all-replicas time through the webhook.',
  {
    replicas: { type: 'number', default: 3, min: 1, help: 'replicas following the repository' },
    'idle-seconds': { type: 'number', default: 60, min: 1, help: 'the idle window, in seconds' },
    pushes: { type: 'number', default: 5, min: 1, help: 'pushes timed, median reported' },
  },
);
const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-fleet-'));
const fleet = await Fleet.start(dir, options.replicas);
try {
  const times: number[] = [];
  for (let i = 0; i < options.pushes; i++) {
    const version = `4.${i + 1}.0`;
    await fleet.push(await fleet.packageOf(version), version);
    times.push(await fleet.all((s) => s.models.ppocr?.version === version, `serves ${version}`));
  }
  // The looks the last push caused end before the window starts.
  await new Promise((r) => setTimeout(r, 2000));
  const before = fleet.manifestRequests.count;
  await new Promise((r) => setTimeout(r, options['idle-seconds'] * 1000));
  const idle = fleet.manifestRequests.count - before;
  console.log(`bench/fleet: ${options.replicas} replicas, polling once a day; ${await machine()}`);
  console.log(
    `push to every replica through the webhook alone: median ${median(times).toFixed(0)} ms of ${times.length} (${times.map((t) => t.toFixed(0)).join(', ')})`,
  );
  console.log(`manifest requests from the idle fleet in ${options['idle-seconds']} s: ${idle}`);
} finally {
  await fleet.close();
  await rm(dir, { recursive: true, force: true });
}
