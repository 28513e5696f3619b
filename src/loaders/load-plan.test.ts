import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { movableBy, movableByFirst, planGraphs, planSessions, sessionKey, unoptimized } from './load-plan.js';

const session = { intraOpThreads: 1 };
const det = new Uint8Array([1]);
const rec = new Uint8Array([2]);
const cls = new Uint8Array([3]);
const files = new Map([
  ['det.onnx', det],
  ['rec.onnx', rec],
  ['cls.onnx', cls],
]);
const graphs = { det: 'det.onnx', rec: 'rec.onnx', cls: 'cls.onnx' };
const digests = new Map([
  ['det.onnx', 'd'.repeat(64)],
  ['rec.onnx', 'r'.repeat(64)],
  ['cls.onnx', 'c'.repeat(64)],
]);
const node = { graphs, files, digests, runtime: 'onnxruntime-node', session } as const;

describe('which sessions a version shares', () => {
  test('every graph keyed by its digest, runtime and options when all have digests', () => {
    const plan = planSessions(node);
    assert.deepEqual(plan.present, ['det', 'rec', 'cls']);
    assert.equal(plan.keys.rec, sessionKey('onnxruntime-node', session, 'r'.repeat(64)));
    assert.equal(plan.keySet?.size, 3);
    assert.notEqual(
      sessionKey('onnxruntime-node', session, 'r'.repeat(64)),
      sessionKey('onnxruntime-wasm', session, 'r'.repeat(64)),
    );
    assert.notEqual(
      sessionKey('onnxruntime-node', session, 'r'.repeat(64)),
      sessionKey('onnxruntime-node', { intraOpThreads: 2 }, 'r'.repeat(64)),
    );
  });

  test('a graph without a digest: no key set, so the version shares nothing', () => {
    const plan = planSessions({ ...node, digests: new Map([['rec.onnx', 'r'.repeat(64)]]) });
    assert.equal(plan.keySet, undefined);
    assert.ok(plan.keys.rec);
    assert.equal(planSessions({ ...node, digests: undefined }).keySet, undefined);
  });

  test('a version without a classifier: two graphs, two keys', () => {
    const plan = planSessions({ ...node, graphs: { det: 'det.onnx', rec: 'rec.onnx' } });
    assert.deepEqual(plan.present, ['det', 'rec']);
    assert.equal(plan.keySet?.size, 2);
  });
});

describe('where each graph opens from', () => {
  test('kept optimized forms are used, the others are optimized by the first thread', () => {
    const form = new Uint8Array(new SharedArrayBuffer(4));
    const asked: string[] = [];
    const sessions = planSessions(node);
    const plan = planGraphs(node, sessions, (sha) => {
      asked.push(sha);
      return sha === 'd'.repeat(64) ? form : undefined;
    });
    assert.equal(plan.optimized.det, form);
    assert.deepEqual(plan.unseen, ['rec', 'cls']);
    assert.equal(plan.missing, undefined);
    assert.equal(asked.length, 3);
  });

  test('the WebAssembly runtime neither asks for nor uses optimized forms', () => {
    const wasm = { ...node, runtime: 'onnxruntime-wasm' } as const;
    const plan = planGraphs(wasm, planSessions(wasm), () => assert.fail('asked for an optimized form'));
    assert.deepEqual(plan.optimized, {});
    assert.deepEqual(plan.unseen, []);
  });

  test('a graph with neither bytes nor an optimized form is missing', () => {
    const input = { ...node, files: new Map([['det.onnx', det]]) };
    const form = new Uint8Array(new SharedArrayBuffer(4));
    const plan = planGraphs(input, planSessions(input), (sha) => (sha === 'r'.repeat(64) ? form : undefined));
    assert.equal(plan.missing, 'cls');
    // Without digests nothing can be optimized: the bytes alone decide.
    const bare = { ...input, digests: undefined };
    assert.equal(planGraphs(bare, planSessions(bare), () => form).missing, 'rec');
  });
});

describe('which buffers move rather than being copied', () => {
  const bytes = { det, rec, cls };
  const ours = new Set([det, rec, cls]);

  test('the optimizing thread takes the unseen graphs it may move; alone, every one', () => {
    assert.deepEqual([...movableByFirst(['rec'], bytes, ours, 2)], [rec]);
    assert.deepEqual([...movableByFirst(['rec'], bytes, new Set([det]), 2)], []);
    assert.deepEqual(movableByFirst(['rec'], bytes, ours, 1), ours);
  });

  test('only the last thread takes bytes, and only those not held optimized', () => {
    const plan = { present: ['det', 'rec', 'cls'] as const, optimized: { det }, bytes };
    assert.deepEqual([...movableBy(0, 2, plan, ours)], []);
    assert.deepEqual([...movableBy(1, 2, plan, ours)], [rec, cls]);
    assert.deepEqual([...movableBy(1, 2, plan, new Set([cls]))], [cls]);
    assert.deepEqual(unoptimized(plan), [rec, cls]);
  });
});
