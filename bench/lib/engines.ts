import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Loaders } from '../../src/loaders/index.js';
import { openSession } from '../../src/loaders/onnxruntime-node.js';
import type { OrtGraphSession } from '../../src/loaders/ort-session.js';
import {
  DEFAULT_PARAMS,
  decodeImage,
  type GraphSession,
  OcrEngine,
  type OcrParams,
  planRecognition,
  type Tensor,
} from '../../src/ocr/index.js';
import { resizeBilinear } from '../../src/ocr/pixels.js';
import { detectionTensor, lineBatch } from '../../src/ocr/tensors.js';
import {
  bundledAssets,
  ensureBundledPackage,
  keyFileSigner,
  pack,
  writeBundledSource,
} from '../../src/pack/index.js';
import { TrustStore, verifyPackage } from '../../src/verify/index.js';
import { verifiedBundled } from '../../test/helpers/bundled.js';
import type { Page } from './pages.js';

const run = promisify(execFile);

/**
 * An OCR implementation under test: lines of text for a page, and (for hotocr) time inside
 * onnxruntime. `ms`, when given, is the time to count for the page instead of the wall time
 * around `read` (the onnxruntime floor counts only its runs).
 */
export interface Engine {
  readonly name: string;
  read(page: Page, dir: string): Promise<{ lines: string[]; inferenceMs?: number; ms?: number }>;
  close(): Promise<void>;
}

/** Changes to the bundled package's config.json: `{det: {...}, cls: {...}, rec: {...}}`. */
export type ConfigChange = Partial<Record<'det' | 'cls' | 'rec', Record<string, unknown>>>;

/**
 * The steps the bundled package turns on (src/pack/bundled.ts), each as the config.json
 * change that turns it back to PaddleOCR's reference.
 */
export const STEPS: Record<string, ConfigChange> = {
  'rec.width own': { rec: { width: 'padded', imageWidth: 320 } },
  'crops (unclip 2, room, bicubic)': { det: { unclipRatio: 1.5 }, rec: { room: 0, enlarge: 'bilinear' } },
  'rec.retryBelow': { rec: { retryBelow: 0 } },
  'det.rescale': { det: { rescale: false } },
  'det.order lines': { det: { order: 'top-left' } },
  'det.pad': { det: { pad: false } },
  'cls (windows, confirmBelow)': { cls: { enabled: false } },
};

/** Every step turned back: PaddleOCR's reference pipeline, as hotocr ran before them. */
export const REFERENCE: ConfigChange = {
  det: { unclipRatio: 1.5, rescale: false, pad: false, order: 'top-left' },
  cls: { enabled: false, windows: false, confirmBelow: 0 },
  rec: { width: 'padded', imageWidth: 320, room: 0, enlarge: 'bilinear', retryBelow: 0, trim: false },
};

/**
 * hotocr on the bundled package, with the native runtime or (`onnxruntime-wasm`)
 * onnxruntime-web's WebAssembly backend; with `change`, on the bundled package repacked with
 * those config.json keys changed (signed with the same development key), as a user pins or
 * turns on a step.
 */
export async function hotocrEngine(
  home: string,
  runtime = 'onnxruntime-node',
  change?: ConfigChange,
): Promise<Engine> {
  const pkg = change ? await changedBundled(home, change) : await verifiedBundled(home);
  const model = await Loaders.builtin({ defaultRuntime: runtime }).load(pkg);
  return {
    name: `hotocr (${runtime})`,
    async read(page) {
      const r = await model.read(await decodeImage(page.png));
      return { lines: r.lines.map((l) => l.text), inferenceMs: r.timings.inference };
    },
    close: () => model.release(),
  };
}

async function changedBundled(home: string, change: ConfigChange) {
  const bundled = await ensureBundledPackage(home);
  const src = await writeBundledSource(join(home, `changed-${Date.now()}`));
  const configPath = join(src, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, Record<string, unknown>>;
  for (const [stage, keys] of Object.entries(change)) config[stage] = { ...config[stage], ...keys };
  await writeFile(configPath, JSON.stringify(config));
  const out = `${src}.zip`;
  await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out });
  return verifyPackage(out, { trust: await TrustStore.load(bundled.trustPath), keepBytes: true });
}

/**
 * The onnxruntime floor: the PP-OCRv4 graphs alone at PaddleOCR's reference sizes (detection
 * with the longest side at most 960, recognition in batches of six padded to the widest and at
 * least 320), in one process with onnxruntime using every core, and only the time inside its
 * run() counted. The crops come from PaddleOCR's reference pipeline, run beforehand, untimed.
 */
export async function floorEngine(): Promise<Engine> {
  const assets = bundledAssets();
  const sessions = await Promise.all(
    (['det', 'rec'] as const).map(async (role) => openSession(role, await readFile(assets[role]))),
  );
  const [det, rec] = sessions as [OrtGraphSession, OrtGraphSession];
  const params: OcrParams = DEFAULT_PARAMS;
  const reference = await OcrEngine.create({ det, rec }, await readFile(assets.dict, 'utf8'), params);
  const timed = async (g: GraphSession, input: Tensor) => {
    const t = performance.now();
    await g.run(input);
    return performance.now() - t;
  };
  return {
    name: 'onnxruntime at reference sizes',
    async read(page) {
      const image = await decodeImage(page.png);
      const untimed = { det: 0, cls: 0, rec: 0, inference: 0, total: 0 };
      const located = await reference.locate(image, untimed);
      const side = Math.max(image.width, image.height);
      const ratio = side > params.det.limitSideLen ? params.det.limitSideLen / side : 1;
      const rw = Math.max(Math.round((image.width * ratio) / 32) * 32, 32);
      const rh = Math.max(Math.round((image.height * ratio) / 32) * 32, 32);
      let ms = await timed(det, detectionTensor(resizeBilinear(image, rw, rh)));
      const { crops } = located;
      const order = planRecognition(crops, { ...params, rec: { ...params.rec, width: 'padded' } }).flat();
      for (let b = 0; b < order.length; b += 6) {
        const batch = order.slice(b, b + 6).map((i) => crops[i]!);
        const widest = Math.max(
          params.rec.imageWidth,
          ...batch.map((c) => Math.ceil((48 * c.width) / c.height)),
        );
        ms += await timed(rec, lineBatch(batch, 48, Math.min(widest, params.rec.maxImageWidth)));
      }
      const texts = await reference.read(image);
      return { lines: texts.lines.map((l) => l.text), ms };
    },
    close: async () => {
      await Promise.all(sessions.map((s) => s.release()));
    },
  };
}

/** @gutenye/ocr-node: the same PP-OCRv4 weights behind a different pipeline. */
export async function gutenyeEngine(): Promise<Engine> {
  const { default: Ocr } = (await import('@gutenye/ocr-node')) as unknown as {
    default: { create(): Promise<{ detect(path: string): Promise<{ text: string }[]> }> };
  };
  const ocr = await Ocr.create();
  return {
    name: '@gutenye/ocr-node',
    async read(page, dir) {
      const path = join(dir, `${page.id}.png`);
      await writeFile(path, page.png);
      const lines = await ocr.detect(path);
      return { lines: lines.map((l) => l.text) };
    },
    close: async () => {},
  };
}

/** The tesseract CLI (Debian tesseract-ocr with chi_sim), one process per page as a user runs it. */
export async function tesseractEngine(): Promise<Engine> {
  return {
    name: 'tesseract 5 (chi_sim+eng)',
    async read(page, dir) {
      const path = join(dir, `${page.id}.png`);
      await writeFile(path, page.png);
      const { stdout } = await run('tesseract', [path, 'stdout', '-l', 'chi_sim+eng', '--psm', '3'], {
        maxBuffer: 1 << 24,
      });
      return { lines: stdout.split('\n').filter((l) => l.trim().length > 0) };
    },
    close: async () => {},
  };
}
