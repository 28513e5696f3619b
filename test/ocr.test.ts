// test-needs: model
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { HotocrError, PackageRejectedError } from '../src/errors.js';
import { loadOcrModel, type ServedModel } from '../src/loaders/index.js';
import { openSession } from '../src/loaders/onnxruntime-node.js';
import type { OrtGraphSession } from '../src/loaders/ort-session.js';
import { decodeImage, OcrEngine, type OcrResult, paramsFromManifest } from '../src/ocr/index.js';
import { ensureBundledPackage, keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { characterErrorRate, renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
let model: ServedModel;
let trust: TrustStore;
let signingKey: string;

async function read(png: Buffer): Promise<OcrResult> {
  return model.read(await decodeImage(png));
}
const texts = (r: OcrResult) => r.lines.map((l) => l.text);
/**
 * PP-OCRv4's Chinese recogniser often leaves out the space between Latin words (a trait of
 * the weights, shared by PaddleOCR itself); where a test is about something else, spaces are
 * not compared.
 */
const squeeze = (lines: string[]) => lines.map((l) => l.replace(/ /g, ''));

before(async () => {
  const bundled = await ensureBundledPackage(join(work, 'home'));
  trust = await TrustStore.load(bundled.trustPath);
  signingKey = join(work, 'home', 'dev-key', 'signing.key');
  model = await loadOcrModel(await verifyPackage(bundled.packagePath, { trust, keepBytes: true }));
});
after(async () => {
  await model?.release();
});

describe('reading text', () => {
  test('reads a generated Chinese line exactly', async () => {
    const r = await read(await renderText(['今天天气很好，我们去公园散步'], { font: 'WenQuanYi Micro Hei' }));
    assert.deepEqual(texts(r), ['今天天气很好，我们去公园散步']);
    assert.ok(r.lines[0]!.score > 0.9);
  });

  test('reads a generated English line exactly, spaces included', async () => {
    const r = await read(await renderText(['The quick brown fox jumps over the lazy dog']));
    assert.deepEqual(texts(r), ['The quick brown fox jumps over the lazy dog']);
  });

  test('reads the lines of a page in reading order, with boxes around each', async () => {
    const lines = ['Invoice 2026-0042', '总金额：1280元', 'Thank you for your order'];
    const png = await renderText(lines, { font: 'WenQuanYi Micro Hei', px: 28 });
    const r = await read(png);
    assert.deepEqual(squeeze(texts(r)), squeeze(lines));
    const { height } = await sharp(png).metadata();
    for (let i = 1; i < r.lines.length; i++) assert.ok(r.lines[i]!.box[0][1] > r.lines[i - 1]!.box[0][1]);
    for (const l of r.lines) for (const [, y] of l.box) assert.ok(y >= 0 && y < height!);
  });

  test('reads a page rotated by a few degrees', async () => {
    const lines = ['Rotation does not stop us', '旋转的页面也能识别'];
    const upright = await renderText(lines, { font: 'WenQuanYi Micro Hei', margin: 60 });
    const rotated = await sharp(upright).rotate(4, { background: '#ffffff' }).png().toBuffer();
    const r = await read(rotated);
    assert.deepEqual(squeeze(texts(r)), squeeze(lines));
  });

  test('applies the EXIF orientation before reading', async () => {
    const upright = await renderText(['Orientation 6 upright'], { px: 36 });
    const stored = await sharp(upright)
      .rotate(-90)
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const raw = await sharp(stored).metadata();
    assert.ok(raw.height! > raw.width!, 'the stored pixels are sideways');
    assert.deepEqual(squeeze(texts(await read(stored))), ['Orientation6upright']);
  });

  test('reads coloured text on a tinted background', async () => {
    const r = await read(
      await renderText(['Colour 12345 色彩'], {
        font: 'WenQuanYi Micro Hei',
        color: '#1a3c8c',
        background: '#f3e6b4',
      }),
    );
    assert.deepEqual(squeeze(texts(r)), ['Colour12345色彩']);
  });

  test('finds no lines in an empty white image', async () => {
    const white = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#ffffff' } })
      .png()
      .toBuffer();
    assert.deepEqual((await read(white)).lines, []);
  });

  test('keeps the character error rate low on a small mixed set, blur and JPEG included', async () => {
    const samples = [
      { text: 'Order 7731 shipped on 2026-11-25', font: 'DejaVu Sans', px: 24 },
      { text: '北京市海淀区中关村大街27号', font: 'WenQuanYi Micro Hei', px: 30 },
      { text: 'Total: $1,249.99 (tax incl.)', font: 'DejaVu Serif', px: 20 },
      { text: '请在三个工作日内完成付款', font: 'WenQuanYi Micro Hei', px: 18 },
    ];
    let errors = 0;
    let chars = 0;
    for (const s of samples) {
      const clean = await renderText([s.text], { font: s.font, px: s.px });
      const hard = await sharp(clean).blur(0.8).jpeg({ quality: 60 }).toBuffer();
      for (const img of [clean, hard]) {
        const want = s.text.replace(/ /g, '');
        const got = squeeze(texts(await read(img))).join('');
        errors += characterErrorRate(want, got) * [...want].length;
        chars += [...want].length;
      }
    }
    // A BGR/RGB swap, a normalisation slip or a dictionary off by one pushes this far past 10%.
    assert.ok(errors / chars <= 0.02, `CER ${(errors / chars).toFixed(3)}`);
  });

  test('gives the same answers to concurrent calls as to sequential ones', async () => {
    const images = await Promise.all(
      ['First image 111', 'Second image 222', '第三张图片', 'Fourth 444'].map((t) =>
        renderText([t], { font: 'WenQuanYi Micro Hei' }),
      ),
    );
    const sequential: string[][] = [];
    for (const img of images) sequential.push(texts(await read(img)));
    const concurrent = await Promise.all(images.map(async (img) => texts(await read(img))));
    assert.deepEqual(concurrent, sequential);
  });
});

describe('inference threads', () => {
  test('reads the same in-process, through OcrEngine on sessions of its own, as through the threads', async () => {
    const pkg = await verifyPackage((await ensureBundledPackage(join(work, 'home'))).packagePath, {
      trust,
      keepBytes: true,
    });
    const m = pkg.manifest;
    const sessions = await Promise.all(
      (['det', 'rec', 'cls'] as const).map((role) => openSession(role, pkg.files.get(m.graphs[role]!)!)),
    );
    try {
      const [det, rec, cls] = sessions as [OrtGraphSession, OrtGraphSession, OrtGraphSession];
      const engine = await OcrEngine.create(
        { det, rec, cls },
        pkg.files.get(m.dict!)!.toString('utf8'),
        paramsFromManifest(m),
      );
      const image = await decodeImage(
        await renderText(['In process 7', '同一个结果'], { font: 'WenQuanYi Micro Hei' }),
      );
      const inProcess = await engine.read(image);
      const threaded = await model.read(image);
      assert.deepEqual(texts(inProcess), texts(threaded));
      assert.deepEqual(
        inProcess.lines.map((l) => l.box),
        threaded.lines.map((l) => l.box),
      );
    } finally {
      await Promise.all(sessions.map((s) => s.release()));
    }
  });

  test('keeps the main thread free while a page is read', async () => {
    const png = await renderText(['The event loop keeps turning', '主线程保持响应'], {
      font: 'WenQuanYi Micro Hei',
    });
    const image = await decodeImage(png);
    // The event loop's turns while two pages are read: each turn is a chance to answer another
    // request. Run here, the pipeline would hold the loop for whole stages at a time, turning
    // only at its few awaits; on the inference threads it turns freely throughout.
    let turns = 0;
    let reading = true;
    const spin = () => {
      turns++;
      if (reading) setImmediate(spin);
    };
    setImmediate(spin);
    const pages = await Promise.all([model.read(image), model.read(image)]);
    reading = false;
    assert.equal(pages.length, 2);
    assert.ok(turns > 1000, `the event loop turned ${turns} times while two pages were read`);
  });

  test('refuses to read after release, and releasing twice is safe', async () => {
    const other = await loadOcrModel(
      await verifyPackage((await ensureBundledPackage(join(work, 'home'))).packagePath, {
        trust,
        keepBytes: true,
      }),
    );
    const image = await decodeImage(await renderText(['release']));
    assert.ok((await other.read(image)).lines.length === 1);
    await other.release();
    await other.release();
    await assert.rejects(
      other.read(image),
      (e: unknown) => e instanceof HotocrError && e.code === 'INFERENCE_FAILED',
    );
  });
});

describe('bad images', () => {
  async function refused(bytes: Buffer, code: string): Promise<void> {
    await assert.rejects(
      decodeImage(bytes),
      (e: unknown) => e instanceof HotocrError && e.code === code && e.message.length > 20,
    );
  }

  test('refuses a 1x1 image as too small', async () => {
    await refused(
      await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } })
        .png()
        .toBuffer(),
      'IMAGE_TOO_SMALL',
    );
  });

  test('refuses a corrupt PNG', async () => {
    const png = await renderText(['corrupt']);
    const broken = Buffer.concat([png.subarray(0, 60), Buffer.alloc(200, 0x55)]);
    await refused(broken, 'IMAGE_INVALID');
  });

  test('refuses a 50-megapixel image before decoding it', async () => {
    const big = await sharp({ create: { width: 10000, height: 5000, channels: 3, background: '#fff' } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    await refused(big, 'IMAGE_TOO_LARGE');
  });

  test('refuses bytes that are not an image, and formats it does not take', async () => {
    await refused(Buffer.from('%PDF-1.7 not an image'), 'IMAGE_INVALID');
    await refused(Buffer.alloc(0), 'IMAGE_INVALID');
    const gif = await sharp({ create: { width: 20, height: 20, channels: 3, background: '#fff' } })
      .gif()
      .toBuffer();
    await refused(gif, 'IMAGE_UNSUPPORTED');
  });
});

describe('graphs that do not fit their roles', () => {
  async function repack(change: (dir: string) => Promise<void>): Promise<string> {
    const dir = await writeBundledSource(join(work, `src-${Math.random().toString(36).slice(2)}`));
    await change(dir);
    const out = `${dir}.zip`;
    await pack(dir, { signer: await keyFileSigner(signingKey), out });
    return out;
  }

  test('refuses a recogniser whose dictionary has the wrong number of characters', async () => {
    const path = await repack(async (dir) => {
      const keys = await readFile(join(dir, 'keys.txt'), 'utf8');
      await writeFile(join(dir, 'keys.txt'), keys.split('\n').slice(1).join('\n'));
    });
    await assert.rejects(
      loadOcrModel(await verifyPackage(path, { trust, keepBytes: true })),
      (e: unknown) =>
        e instanceof PackageRejectedError && e.code === 'GRAPH_INCOMPATIBLE' && /dictionary/.test(e.message),
    );
  });

  test('refuses a detection graph in the recogniser role', async () => {
    const path = await repack(async (dir) => {
      await writeFile(join(dir, 'rec.onnx'), await readFile(join(dir, 'det.onnx')));
    });
    await assert.rejects(
      loadOcrModel(await verifyPackage(path, { trust, keepBytes: true })),
      (e: unknown) => e instanceof PackageRejectedError && e.code === 'GRAPH_INCOMPATIBLE',
    );
  });

  test('refuses a graph file onnxruntime cannot open', async () => {
    const path = await repack(async (dir) => {
      await writeFile(join(dir, 'cls.onnx'), Buffer.from('definitely not protobuf'));
    });
    await assert.rejects(
      loadOcrModel(await verifyPackage(path, { trust, keepBytes: true })),
      (e: unknown) => e instanceof PackageRejectedError && e.code === 'GRAPH_INVALID',
    );
  });
});
