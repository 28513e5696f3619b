import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HotocrError, InferenceError, PackageRejectedError } from './errors.js';
import { deserializeError, serializeError } from './thread-errors.js';

/** Through a real structured clone, as a thread's message goes. */
const across = (error: unknown) => deserializeError(structuredClone(serializeError(error)));

describe('errors that cross a thread', () => {
  test('a rejection keeps its class, code, details and cause', () => {
    const cause = Object.assign(new Error('no such file'), { code: 'ENOENT' });
    const sent = new PackageRejectedError('GRAPH_INVALID', 'det.onnx does not open', {
      details: { entry: 'det.onnx', size: 12 },
      cause,
    });
    const got = across(sent);
    assert.ok(got instanceof PackageRejectedError);
    assert.equal(got.code, 'GRAPH_INVALID');
    assert.equal(got.message, 'det.onnx does not open');
    assert.deepEqual(got.details, { entry: 'det.onnx', size: 12 });
    assert.ok(got.cause instanceof Error);
    assert.equal((got.cause as Error).message, 'no such file');
    assert.equal((got.cause as { code?: string }).code, 'ENOENT');
  });

  test('an inference failure and any other code of ours keep their class and code', () => {
    assert.ok(across(new InferenceError('run failed')) instanceof InferenceError);
    const load = across(new HotocrError('LOAD_FAILED', 'no runtime', { details: { runtime: 'x' } }));
    assert.ok(load instanceof HotocrError);
    assert.equal((load as HotocrError).code, 'LOAD_FAILED');
    assert.deepEqual((load as HotocrError).details, { runtime: 'x' });
  });

  test('a thrown value that is not an Error, details that cannot be cloned, a cycle of causes', () => {
    assert.equal(across('plain text').message, 'plain text');
    const odd = across(new HotocrError('LOAD_FAILED', 'odd', { details: { f: () => 1 } }));
    assert.equal(typeof (odd as HotocrError).details.f, 'string');
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    let depth = 0;
    for (let e: unknown = across(a); e instanceof Error; e = e.cause) depth++;
    assert.ok(depth <= 5, `${depth} causes`);
  });

  test('an unknown code is kept as text, not taken for one of ours', () => {
    const got = across(Object.assign(new Error('disk'), { code: 'EIO' }));
    assert.ok(!(got instanceof HotocrError));
    assert.equal((got as { code?: string }).code, 'EIO');
  });
});
