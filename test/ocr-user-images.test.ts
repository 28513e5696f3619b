// test-needs: model
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { spaced } from '../bench/lib/score.js';
import { loadOcrModel, type ServedModel } from '../src/loaders/index.js';
import { openSession } from '../src/loaders/onnxruntime-node.js';
import type { OrtGraphSession } from '../src/loaders/ort-session.js';
import {
  DEFAULT_PARAMS,
  decodeImage,
  OcrEngine,
  type OcrLine,
  paramsFromManifest,
  type Quad,
} from '../src/ocr/index.js';
import { ensureBundledPackage } from '../src/pack/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { tempDir } from './helpers/tmp.js';
import {
  blackTextOnTransparency,
  greyAlphaLine,
  longLatinLines,
  longLine,
  sixteenBitTransparent,
  smallLabel,
  tightCrop,
  type UserImage,
  upsideDownLine,
  whiteTextOnTransparency,
} from './helpers/user-images.js';

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

async function read(image: UserImage): Promise<OcrLine[]> {
  return (await model.read(await decodeImage(image.bytes))).lines;
}

/**
 * The box lies around the text's extent in the image as sent: it holds the extent (give or
 * take 2 pixels of anti-aliasing) and reaches no further than a text height beyond it.
 */
function assertAround(box: Quad, [left, top, right, bottom]: readonly number[], what: string): void {
  const xs = box.map((p) => p[0]);
  const ys = box.map((p) => p[1]);
  const slack = Math.max(8, bottom! - top!);
  const inside =
    Math.min(...xs) <= left! + 2 &&
    Math.min(...ys) <= top! + 2 &&
    Math.max(...xs) >= right! - 2 &&
    Math.max(...ys) >= bottom! - 2;
  const near =
    Math.min(...xs) >= left! - slack &&
    Math.min(...ys) >= top! - slack &&
    Math.max(...xs) <= right! + slack &&
    Math.max(...ys) <= bottom! + slack;
  assert.ok(
    inside && near,
    `${what}: box ${JSON.stringify(box)} around [${left}, ${top}, ${right}, ${bottom}]`,
  );
}

/** Reads a one-line image and checks its text, with its spaces, and its box. */
async function readsOneLine(image: UserImage): Promise<void> {
  const lines = await read(image);
  assert.deepEqual(
    lines.map((l) => l.text),
    image.lines,
    image.name,
  );
  assertAround(lines[0]!.box, image.extents[0]!, image.name);
}

describe('reading images as users send them', () => {
  test('reads white text on a transparent PNG', async () => {
    await readsOneLine(await whiteTextOnTransparency());
  });

  test('reads a grey and alpha PNG (two channels) whose text comes close to its edges, spaces included', async () => {
    await readsOneLine(await greyAlphaLine());
  });

  test('reads light text on a transparent PNG of 16 bits a channel', async () => {
    await readsOneLine(await sixteenBitTransparent());
  });

  for (const grey of [false, true]) {
    test(`finds the single characters and short words of a small label photo${grey ? ', one channel' : ''}`, async () => {
      const image = await smallLabel(grey);
      const lines = await read(image);
      let found = 0;
      image.lines.forEach((truth, i) => {
        const line = lines.find((l) => spaced(l.text) === spaced(truth));
        if (!line) return;
        found++;
        assertAround(line.box, image.extents[i]!, truth);
      });
      assert.ok(found >= 17, `${found} of 18 read: ${JSON.stringify(lines.map((l) => l.text))}`);
    });
  }

  test('reads one long line filling a wide image whole, not in fragments', async () => {
    await readsOneLine(await longLine());
  });

  test('reads a tight crop whose text touches every border as one line', async () => {
    await readsOneLine(await tightCrop());
  });

  test('reads an upside-down line, its box around the text in the image as sent', async () => {
    await readsOneLine(await upsideDownLine());
  });

  test('reads the lines of an upside-down page in the order of the page turned upright', async () => {
    const upright = await sharp({
      text: {
        text: '第一行 First line\n第二行 Second line',
        font: 'WenQuanYi Micro Hei',
        dpi: 100,
        rgba: true,
      },
    })
      .png()
      .toBuffer();
    const page = await sharp(upright)
      .flatten({ background: '#ffffff' })
      .extend({ top: 30, bottom: 30, left: 30, right: 30, background: '#ffffff' })
      .rotate(180)
      .png()
      .toBuffer();
    const lines = (await model.read(await decodeImage(page))).lines;
    assert.deepEqual(
      lines.map((l) => l.text),
      ['第一行 First line', '第二行 Second line'],
    );
    // Turned, the first line is the lower one in the image as sent.
    const middle = (l: OcrLine) => (l.box[0][1] + l.box[2][1]) / 2;
    assert.ok(middle(lines[0]!) > middle(lines[1]!));
  });

  test('still reads black text on transparency', async () => {
    await readsOneLine(await blackTextOnTransparency());
  });

  test('finds nothing in an all-black image', async () => {
    const black = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#000000' } })
      .png()
      .toBuffer();
    assert.deepEqual((await model.read(await decodeImage(black))).lines, []);
  });
});

describe('the direction of a line', () => {
  test('a long Latin line the squeezed classifier takes for upside down is read upright', async () => {
    const image = await longLatinLines();
    assert.deepEqual(
      (await read(image)).map((l) => l.text),
      image.lines,
    );
    // PaddleOCR's rule (every line classified squeezed to 192 x 48, turned above 0.9) turns this one.
    const { files, manifest } = await verifyPackage(
      (await ensureBundledPackage(join(work, 'home'))).packagePath,
      { trust: await TrustStore.load(join(work, 'home', 'dev-key', 'signing.pub')), keepBytes: true },
    );
    const sessions = await Promise.all(
      (['det', 'rec', 'cls'] as const).map((role) => openSession(role, files.get(manifest.graphs[role]!)!)),
    );
    try {
      const [det, rec, cls] = sessions as [OrtGraphSession, OrtGraphSession, OrtGraphSession];
      const bundled = paramsFromManifest(manifest);
      const reference = await OcrEngine.create(
        { det, rec, cls },
        files.get(manifest.dict!)!.toString('utf8'),
        {
          ...bundled,
          cls: {
            ...bundled.cls,
            windows: DEFAULT_PARAMS.cls.windows,
            confirmBelow: DEFAULT_PARAMS.cls.confirmBelow,
          },
        },
      );
      const turned = await reference.read(await decodeImage(image.bytes));
      assert.notDeepEqual(
        turned.lines.map((l) => l.text),
        image.lines,
      );
    } finally {
      await Promise.all(sessions.map((s) => s.release()));
    }
  });
});
