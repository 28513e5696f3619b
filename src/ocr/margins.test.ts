import assert from 'node:assert/strict';
import { test } from 'node:test';
import { borderColour, padForDetection } from './margins.js';

function image(width: number, height: number, fill: [number, number, number]) {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(fill, p * 3);
  return { data, width, height };
}

test('a wide single line is padded with its border colour to at most 4 times as wide as high', () => {
  const line = image(1000, 30, [250, 240, 230]);
  // Ink in the middle, touching the top and bottom border: the border colour is still the background.
  for (let y = 0; y < 30; y++) line.data.set([0, 0, 0], (y * 1000 + 500) * 3);
  assert.deepEqual(borderColour(line), [250, 240, 230]);
  const { image: padded, left, top } = padForDetection(line);
  assert.equal(left, 30);
  assert.ok(padded.width / padded.height <= 4);
  assert.equal(padded.width, 1060);
  assert.deepEqual(Array.from(padded.data.subarray(0, 3)), [250, 240, 230]);
  // The original sits at (left, top), whole.
  const at = ((top + 5) * padded.width + left + 500) * 3;
  assert.deepEqual(Array.from(padded.data.subarray(at, at + 3)), [0, 0, 0]);
});

test('a short crop is given room on every side; a page is left as it is', () => {
  const crop = padForDetection(image(300, 22, [255, 255, 255]));
  assert.deepEqual([crop.left, crop.top >= 22], [22, true]);
  const page = image(640, 480, [255, 255, 255]);
  assert.equal(padForDetection(page).image, page);
});
