import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HotocrError } from '../errors.js';
import { Admission } from './admission.js';

/** Work that ends when the test says so. */
function held() {
  let done = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  return { work: () => finished, done: () => done() };
}

test('a model at capacity is refused while another is still admitted', () => {
  const admission = new Admission({ maxInflight: 1, maxQueue: 2 });
  for (let i = 0; i < 3; i++) admission.admit('flooded');
  assert.throws(
    () => admission.admit('flooded'),
    (e: HotocrError) => e.code === 'OVERLOADED' && /for flooded/.test(e.message),
  );
  assert.doesNotThrow(() => admission.admit('quiet'));
  assert.equal(admission.admitted, 4);
});

test('when a slot frees, the models waiting take turns', async () => {
  const admission = new Admission({ maxInflight: 1, maxQueue: 10 });
  const far = performance.now() + 60_000;
  const order: string[] = [];
  const first = held();
  const running = admission.run(first.work, far, undefined, 'a');
  // Four of a, then two of b, all waiting behind the one running.
  const jobs: { model: string; job: ReturnType<typeof held> }[] = [];
  const runs: Promise<void>[] = [];
  for (const model of ['a', 'a', 'a', 'a', 'b', 'b']) {
    const job = held();
    jobs.push({ model, job });
    runs.push(
      admission.run(
        () => {
          order.push(model);
          job.done();
          return Promise.resolve();
        },
        far,
        undefined,
        model,
      ),
    );
  }
  assert.equal(admission.queued, 6);
  first.done();
  await running;
  await Promise.all(runs);
  // b does not wait for every a: after a ran, b, then a, then b, then the rest of a.
  assert.deepEqual(order, ['b', 'a', 'b', 'a', 'a', 'a']);
});
