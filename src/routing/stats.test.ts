import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrafficStats } from './stats.js';

test('traffic stats: rate over 10 s, p99 over a minute, 5-second series, old slots dropped', () => {
  let now = 1_000_000_000_000;
  const stats = new TrafficStats(300, () => now);
  // 100 requests in each of 10 seconds: 99 at 100 ms, 1 at 2 s.
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 99; i++) stats.record('m/1', 100, false);
    stats.record('m/1', 2000, true);
    now += 1000;
  }
  now -= 1000;
  const [v] = stats.snapshot();
  assert.equal(v!.version, 'm/1');
  assert.equal(v!.perSecond, 100);
  // Bins are about 12 % wide and report their upper edge: p99 is 100 ms to 112 ms, not 2 s.
  assert.ok(v!.p99! >= 100 && v!.p99! <= 113, `p99 ${v!.p99}`);
  assert.equal(
    v!.series.reduce((n, p) => n + p.count, 0),
    1000,
  );
  assert.equal(
    v!.series.reduce((n, p) => n + p.errors, 0),
    10,
  );
  for (const p of v!.series) assert.ok(p.p50! >= 100 && p.p50! <= 113);
  // Five minutes later nothing is left of it.
  now += 301_000;
  assert.deepEqual(stats.snapshot(), []);
});

test('traffic stats summarise one version from a moment on', () => {
  let now = 2_000_000_000_000;
  const stats = new TrafficStats(300, () => now);
  for (let s = 0; s < 20; s++) {
    for (let i = 0; i < 9; i++) stats.record('m/1', 50, false);
    stats.record('m/1', 900, s >= 10);
    now += 1000;
  }
  now -= 1000;
  const all = stats.summary('m/1', 0);
  assert.equal(all.count, 200);
  assert.equal(all.errors, 10);
  // The last 10 seconds only: 100 requests, 10 failed.
  const recent = stats.summary('m/1', now - 9_000);
  assert.equal(recent.count, 100);
  assert.equal(recent.errors, 10);
  assert.ok(recent.p99! >= 900 && recent.p99! <= 1010, `p99 ${recent.p99}`);
  assert.deepEqual(stats.summary('m/2', 0), { count: 0, errors: 0, p99: null });
});
