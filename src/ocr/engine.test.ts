import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PackageRejectedError } from '../errors.js';
import { OcrEngine } from './engine.js';
import { DEFAULT_PARAMS, type OcrParams } from './params.js';
import type { GraphSession, Tensor } from './session.js';

/** A graph that answers a fixed output shape for any input and counts its runs by input shape. */
function graph(shape: (input: readonly number[]) => number[]): GraphSession & { runs: string[] } {
  const runs: string[] = [];
  return {
    inputNames: ['x'],
    outputNames: ['y'],
    runs,
    async run(input: Tensor): Promise<Tensor> {
      runs.push(input.dims.join('x'));
      const dims = shape(input.dims);
      return { data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims };
    },
  };
}

// Two characters: blank, a, b and space.
const DICTIONARY = 'a\nb\n';
const withRec = (rec: Partial<OcrParams['rec']>): OcrParams => ({
  ...DEFAULT_PARAMS,
  rec: { ...DEFAULT_PARAMS.rec, ...rec },
});

test('a session shared by versions is probed once per input shape, each version checking the shape against its own dictionary', async () => {
  const det = graph(([n, , h, w]) => [n!, 1, h!, w!]);
  const cls = graph(([n]) => [n!, 2]);
  const rec = graph(([n, , , w]) => [n!, w! / 8, 4]);
  const graphs = { det, cls, rec };

  await OcrEngine.create(graphs, DICTIONARY, DEFAULT_PARAMS);
  assert.deepEqual([det.runs, cls.runs, rec.runs], [['1x3x64x64'], ['1x3x48x192'], ['1x3x48x320']]);

  // The same sessions for another version: nothing runs again.
  await OcrEngine.create(graphs, DICTIONARY, DEFAULT_PARAMS);
  assert.deepEqual([det.runs.length, cls.runs.length, rec.runs.length], [1, 1, 1]);

  // Another input shape runs the graph once more.
  await OcrEngine.create(graphs, DICTIONARY, withRec({ imageWidth: 160 }));
  assert.deepEqual(rec.runs, ['1x3x48x320', '1x3x48x160']);

  // A shape known already is still checked against this version's dictionary.
  await assert.rejects(
    OcrEngine.create(graphs, 'a\nb\nc\n', DEFAULT_PARAMS),
    (e: PackageRejectedError) => e.code === 'GRAPH_INCOMPATIBLE' && /4 classes/.test(e.message),
  );
  assert.equal(rec.runs.length, 2);

  // Other sessions are probed on their own.
  const other = graph(([n, , , w]) => [n!, w! / 8, 4]);
  await OcrEngine.create({ rec: other }, DICTIONARY, DEFAULT_PARAMS);
  assert.deepEqual(other.runs, ['1x3x48x320']);
});

test('a probe that fails is not remembered: the next version runs it again and is refused the same way', async () => {
  let fail = true;
  const rec = graph(([n, , , w]) => {
    if (fail) throw new Error('bad input');
    return [n!, w! / 8, 4];
  });
  for (let i = 0; i < 2; i++)
    await assert.rejects(
      OcrEngine.create({ rec }, DICTIONARY, DEFAULT_PARAMS),
      (e: PackageRejectedError) => e.code === 'GRAPH_INCOMPATIBLE' && /cannot run/.test(e.message),
    );
  fail = false;
  await OcrEngine.create({ rec }, DICTIONARY, DEFAULT_PARAMS);
  assert.equal(rec.runs.length, 3);
});
