import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, flattenBackground } from './image.js';

/** A 40 x 20 image: a 10 x 10 square of `ink` on a transparent background whose hidden colour is `hidden`. */
async function squareOnTransparency(
  ink: [number, number, number],
  hidden: [number, number, number],
  options: { channels?: 2 | 4; depth?: 16 } = {},
): Promise<Buffer> {
  const channels = options.channels ?? 4;
  const raw = Buffer.alloc(40 * 20 * channels);
  for (let y = 0; y < 20; y++) {
    for (let x = 0; x < 40; x++) {
      const inside = x >= 15 && x < 25 && y >= 5 && y < 15;
      const [r, g, b] = inside ? ink : hidden;
      const i = (y * 40 + x) * channels;
      if (channels === 2) raw[i] = r;
      else raw.set([r, g, b], i);
      raw[i + channels - 1] = inside ? 255 : 0;
    }
  }
  let image = sharp(raw, { raw: { width: 40, height: 20, channels } });
  if (channels === 2) image = image.toColourspace('b-w');
  if (options.depth === 16) image = image.toColourspace(channels === 2 ? 'grey16' : 'rgb16');
  return image.png().toBuffer();
}

const pixel = (img: { data: Uint8Array; width: number }, x: number, y: number) =>
  Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

test('white drawn on transparency is flattened onto black, so it stays visible', async () => {
  const img = await decodeImage(await squareOnTransparency([255, 255, 255], [255, 255, 255]));
  assert.deepEqual([img.width, img.height], [40, 20]);
  assert.deepEqual(pixel(img, 20, 10), [255, 255, 255]);
  assert.deepEqual(pixel(img, 2, 2), [0, 0, 0]);
});

test('black drawn on transparency is flattened onto white, as before', async () => {
  const img = await decodeImage(await squareOnTransparency([0, 0, 0], [0, 0, 0]));
  assert.deepEqual(pixel(img, 20, 10), [0, 0, 0]);
  assert.deepEqual(pixel(img, 2, 2), [255, 255, 255]);
});

test('a grey and alpha PNG, and one with 16 bits a channel, decode to 8-bit RGB by the same rule', async () => {
  for (const bytes of [
    await squareOnTransparency([240, 240, 240], [255, 255, 255], { channels: 2 }),
    await squareOnTransparency([240, 240, 240], [255, 255, 255], { depth: 16 }),
    await squareOnTransparency([240, 240, 240], [255, 255, 255], { channels: 2, depth: 16 }),
  ]) {
    const meta = await sharp(bytes).metadata();
    assert.ok(meta.hasAlpha);
    const img = await decodeImage(bytes);
    assert.equal(img.data.length, 40 * 20 * 3);
    assert.deepEqual(pixel(img, 20, 10), [240, 240, 240]);
    assert.deepEqual(pixel(img, 2, 2), [0, 0, 0]);
  }
});

test('the background is chosen by what is drawn, weighted by opacity; nothing drawn gives white', () => {
  const rgba = (...px: number[][]) => new Uint8Array(px.flat());
  assert.equal(flattenBackground(rgba([250, 250, 250, 255], [0, 0, 0, 0])), 0);
  assert.equal(flattenBackground(rgba([20, 20, 20, 255], [255, 255, 255, 0])), 255);
  // Mostly opaque dark text with a faint light haze: the text decides.
  assert.equal(flattenBackground(rgba([10, 10, 10, 255], [10, 10, 10, 255], [255, 255, 255, 60])), 255);
  assert.equal(flattenBackground(rgba([0, 0, 0, 0])), 255);
});
