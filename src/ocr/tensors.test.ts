import assert from 'node:assert/strict';
import { test } from 'node:test';
import { charset, ctcDecode } from './ctc.js';
import { inkRows, tightenToInk } from './ink.js';
import { detectionTensor, lineBatch, trim } from './tensors.js';

test('feeds detection channels in BGR order with ImageNet mean and std', () => {
  // One pure red pixel: R=255, G=0, B=0.
  const t = detectionTensor({ data: new Uint8Array([255, 0, 0]), width: 1, height: 1 });
  assert.deepEqual(t.dims, [1, 3, 1, 1]);
  assert.ok(Math.abs(t.data[0]! - (0 - 0.485) / 0.229) < 1e-5, 'channel 0 is blue');
  assert.ok(Math.abs(t.data[1]! - (0 - 0.456) / 0.224) < 1e-5, 'channel 1 is green');
  assert.ok(Math.abs(t.data[2]! - (1 - 0.406) / 0.225) < 1e-5, 'channel 2 is red');
});

test('scales recognition input to [-1, 1], BGR, right-padded with zeros', () => {
  const red = { data: new Uint8Array([255, 0, 0, 255, 0, 0]), width: 2, height: 1 };
  const t = lineBatch([red], 1, 4);
  assert.deepEqual(t.dims, [1, 3, 1, 4]);
  assert.deepEqual(Array.from(t.data), [-1, -1, 0, 0, -1, -1, 0, 0, 1, 1, 0, 0]);
});

test('decodes CTC greedily: repeats collapse, blanks separate, blank is class 0 and space is last', () => {
  const chars = charset('a\nb\n', true);
  assert.deepEqual(chars, ['', 'a', 'b', ' ']);
  // steps: a a blank a b space b  → "aab b"
  const best = [1, 1, 0, 1, 2, 3, 2];
  const probs = new Float32Array(best.length * 4);
  best.forEach((k, t) => {
    probs[t * 4 + k] = 0.9;
  });
  const r = ctcDecode(probs, 0, best.length, 4, chars);
  assert.equal(r.text, 'aab b');
  assert.ok(Math.abs(r.score - 0.9) < 1e-6);
});

test('a crop is cut to its text rows with a quarter of their height as margin when they fill little of it', () => {
  // 100 x 40, white, with a black band on rows 16..23.
  const data = new Uint8Array(100 * 40 * 3).fill(255);
  for (let y = 16; y < 24; y++) data.fill(0, y * 300, (y + 1) * 300);
  const crop = { data, width: 100, height: 40 };
  assert.deepEqual(inkRows(crop), [16, 24]);
  const tight = tightenToInk(crop);
  assert.deepEqual([tight.width, tight.height], [100, 12]);
  // Text filling the crop already: left as it is.
  const full = { data: new Uint8Array(100 * 10 * 3), width: 100, height: 10 };
  full.data.fill(255, 0, 300);
  full.data.fill(255, 9 * 300);
  assert.equal(tightenToInk(full), full);
  assert.deepEqual(
    [trim(crop, { side: 3, top: 4, bottom: 6 }).width, trim(crop, { side: 3, top: 4, bottom: 6 }).height],
    [94, 30],
  );
});
