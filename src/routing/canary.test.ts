import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CanaryGuard, type CanaryGuardOptions, type CanaryRollback } from './canary.js';
import type { RoutingView } from './routing.js';
import { TrafficStats } from './stats.js';

const START = Date.parse('2026-11-30T12:00:00Z');

/** A split of ppocr between 1.0.0 (active) and 1.1.0 begun at START, on a clock the test moves. */
function setUp(options: Partial<CanaryGuardOptions>) {
  let now = START;
  const clock = () => now;
  const stats = new TrafficStats(300, clock);
  const ended: { reason: string; rollback?: CanaryRollback }[] = [];
  const view: RoutingView = {
    name: 'ppocr',
    active: '1.0.0',
    split: [
      { version: '1.0.0', weight: 50 },
      { version: '1.1.0', weight: 50 },
    ],
    allowPinning: false,
    updatedAt: new Date(START).toISOString(),
  };
  const router = {
    view: () => (ended.length > 0 ? { ...view, split: [] } : view),
    endSplit: (reason: string, rollback?: CanaryRollback) =>
      void ended.push({ reason, ...(rollback ? { rollback } : {}) }),
  };
  const guard = new CanaryGuard(() => [router], stats, {
    minRequests: 20,
    windowSeconds: 60,
    now: clock,
    ...options,
  });
  /** `count` requests answered by `version` over one second: `failing` of them failed, each took `ms`. */
  const answer = (version: string, count: number, ms: number, failing = 0) => {
    for (let i = 0; i < count; i++) stats.record(`ppocr/${version}`, ms, i < failing);
  };
  const tick = (seconds: number) => {
    now += seconds * 1000;
  };
  return { guard, ended, answer, tick };
}

describe('the canary guard', () => {
  test('rolls back a canary whose error rate passes the stable one by more than the margin', () => {
    const { guard, ended, answer, tick } = setUp({ errorMargin: 0.05 });
    tick(1);
    answer('1.0.0', 30, 300);
    answer('1.1.0', 30, 300, 6);
    const rollback = guard.check()[0];
    assert.equal(rollback?.cause, 'error-rate');
    assert.equal(rollback.canary.version, '1.1.0');
    assert.equal(rollback.canary.errorRate, 0.2);
    assert.equal(rollback.stable.errorRate, 0);
    assert.match(
      ended[0]!.reason,
      /canary ppocr 1\.1\.0 rolled back: error rate 20\.0% against 0\.0% \(margin 5\.0%\)/,
    );
  });

  test('rolls back a canary whose p99 passes the stable one by more than the margin and the floor', () => {
    const { guard, answer, tick } = setUp({ p99Margin: 1 });
    tick(1);
    answer('1.0.0', 30, 300);
    answer('1.1.0', 30, 900);
    const rollback = guard.check()[0];
    assert.equal(rollback?.cause, 'p99');
    assert.ok(rollback.canary.p99! >= 900 && rollback.stable.p99! < 400, JSON.stringify(rollback));
  });

  test('keeps a canary as good as the stable version, check after check', () => {
    const { guard, ended, answer, tick } = setUp({ errorMargin: 0.05, p99Margin: 0.5 });
    for (let s = 0; s < 10; s++) {
      tick(1);
      answer('1.0.0', 30, 300, 1);
      answer('1.1.0', 30, 310, 1);
      assert.deepEqual(guard.check(), []);
    }
    assert.deepEqual(ended, []);
  });

  test('judges nothing before both versions answered the minimum', () => {
    const { guard, answer, tick } = setUp({ errorMargin: 0.05 });
    tick(1);
    answer('1.0.0', 30, 300);
    answer('1.1.0', 19, 300, 19);
    assert.deepEqual(guard.check(), []);
    answer('1.1.0', 1, 300, 1);
    assert.equal(guard.check()[0]?.cause, 'error-rate');
  });

  test('does not count a p99 difference under the floor, whatever the ratio', () => {
    const { guard, answer, tick } = setUp({ p99Margin: 0.1 });
    tick(1);
    answer('1.0.0', 30, 10);
    answer('1.1.0', 30, 50);
    assert.deepEqual(guard.check(), []);
  });

  test('looks only at the window: old failures age out', () => {
    const { guard, answer, tick } = setUp({ errorMargin: 0.05 });
    tick(1);
    answer('1.1.0', 30, 300, 30);
    tick(120);
    answer('1.0.0', 30, 300);
    answer('1.1.0', 30, 300);
    assert.deepEqual(guard.check(), []);
  });
});
