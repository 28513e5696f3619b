// test-needs: model
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { spaced } from '../bench/lib/score.js';
import { loadOcrModel, type ServedModel } from '../src/loaders/index.js';
import { decodeImage } from '../src/ocr/index.js';
import { ensureBundledPackage } from '../src/pack/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
let model: ServedModel;

before(async () => {
  const bundled = await ensureBundledPackage(join(work, 'home'));
  const trust = await TrustStore.load(bundled.trustPath);
  model = await loadOcrModel(await verifyPackage(bundled.packagePath, { trust, keepBytes: true }));
});
after(async () => {
  await model?.release();
});

async function readLines(png: Buffer): Promise<string[]> {
  return (await model.read(await decodeImage(png))).lines.map((l) => l.text);
}

describe('whole lines, word spaces included', () => {
  // PaddleOCR's reference crops cut into the text's ascenders and ends: the recogniser then
  // drops the spaces between words (PriceTotal) or puts a dot in their place.
  for (const [font, px] of [
    ['DejaVu Sans', 20],
    ['DejaVu Sans', 26],
    ['DejaVu Serif', 20],
    ['DejaVu Serif', 34],
  ] as const) {
    test(`reads the spaces between Latin words, ${font} ${px} px`, async () => {
      for (const line of [
        'Price Total',
        'Release Quantity Version Customer 37337',
        'Meeting moved to Room 301 at 3 PM',
      ]) {
        assert.deepEqual(
          await readLines(await renderText([line], { font, px, margin: Math.round(px * 0.6) })),
          [line],
        );
      }
    });
  }

  test("keeps a line's first character when the line starts with a narrow letter", async () => {
    const line = 'iPhone 手机壳 两件 59 元';
    const clean = await renderText([line], { font: 'WenQuanYi Micro Hei', px: 14, margin: 8 });
    const blurred = await sharp(clean).blur(0.7).jpeg({ quality: 55 }).toBuffer();
    const read = await readLines(blurred);
    assert.deepEqual(read.map(spaced), [spaced(line)]);
  });
});
