import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstRatio, inputSize, secondRatio } from './detection.js';
import { DEFAULT_PARAMS } from './params.js';

const det = { ...DEFAULT_PARAMS.det, rescale: true };

test('detection scales large images down, and small text up in a second pass, within maxSideLen', () => {
  assert.equal(firstRatio(1920, 1080, det), 0.5);
  assert.equal(firstRatio(320, 430, det), 1);
  assert.deepEqual(inputSize(320, 430, 1), [320, 416]);
  const none = { dropped: 0, narrowest: 40 };
  // Nothing small: no second pass.
  assert.equal(secondRatio(320, 430, 1, none, det), undefined);
  // Regions dropped as too narrow: twice the scale.
  assert.equal(secondRatio(320, 430, 1, { dropped: 2, narrowest: 40 }, det), 2);
  // Narrow boxes: enough to bring the narrowest to 24 pixels.
  assert.equal(secondRatio(320, 430, 1, { dropped: 0, narrowest: 12 }, det), 2);
  assert.equal(secondRatio(320, 430, 1, { dropped: 0, narrowest: 15 }, det), 1.6);
  // Bounded: a 1600 px page found at 0.6 goes no further than 2048 px.
  assert.equal(secondRatio(1600, 1200, 0.6, { dropped: 1, narrowest: 40 }, det), 1.2);
  assert.equal(
    secondRatio(2000, 1500, 0.48, { dropped: 1, narrowest: 40 }, { ...det, maxSideLen: 1100 }),
    undefined,
  );
  // Off unless the package turns it on.
  assert.equal(secondRatio(320, 430, 1, { dropped: 2, narrowest: 4 }, DEFAULT_PARAMS.det), undefined);
});
