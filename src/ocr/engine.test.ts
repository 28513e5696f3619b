import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PackageRejectedError } from '../errors.js';
import { assembleLines, classifierWindows, OcrEngine, planRecognition } from './engine.js';
import type { Quad } from './geometry.js';
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

test('own-width recognition runs each crop alone, widest first; padded batching as PaddleOCR', () => {
  const crops = [
    { width: 100, height: 30 },
    { width: 900, height: 30 },
    { width: 300, height: 30 },
  ];
  assert.deepEqual(planRecognition(crops, withRec({ width: 'own' })), [[1], [2], [0]]);
  assert.deepEqual(planRecognition(crops, DEFAULT_PARAMS), [[0, 2], [1]]);
});

test('a page whose lines were mostly read turned is given in the order of the page turned upright', () => {
  const at = (y: number): Quad => [
    [10, y],
    [210, y],
    [210, y + 20],
    [10, y + 20],
  ];
  const located = { boxes: [at(0), at(40)], turned: [false, false] };
  const texts = [
    { text: 'second', score: 0.9, turned: true },
    { text: 'first', score: 0.9, turned: true },
  ];
  const lines = (order: 'lines' | 'top-left') =>
    assembleLines(located, texts, { ...DEFAULT_PARAMS, det: { ...DEFAULT_PARAMS.det, order } }).map(
      (l) => l.text,
    );
  assert.deepEqual(lines('lines'), ['first', 'second']);
  // PaddleOCR's order is kept as it is.
  assert.deepEqual(lines('top-left'), ['second', 'first']);
});

test('a long line is classified in at most three windows of the classifier width, at its height', () => {
  const crop = { data: new Uint8Array(1000 * 24 * 3), width: 1000, height: 24 };
  const windows = classifierWindows(crop, 48, 192);
  // 2000 px at height 48: 11 windows, of which the first, the middle and the last.
  assert.equal(windows.length, 3);
  for (const w of windows) assert.ok(w.height === 48 && w.width <= 192 && w.width > 150);
  const short = { data: new Uint8Array(80 * 24 * 3), width: 80, height: 24 };
  assert.deepEqual(classifierWindows(short, 48, 192), [short]);
});
