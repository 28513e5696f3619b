import type { OcrParams, OcrResult, RgbImage } from '../ocr/index.js';
import type { VerifiedPackage } from '../verify/index.js';
import { OcrWorkerPool, type PoolOptions } from './worker-pool.js';

/** An OCR model loaded from a verified package, ready to read images. */
export interface LoadedOcrModel {
  readonly name: string;
  readonly version: string;
  readonly params: OcrParams;
  read(image: RgbImage): Promise<OcrResult>;
  /** Frees every session and stops its threads. Safe to call twice. */
  release(): Promise<void>;
}

/**
 * Opens the package's graphs in onnxruntime from the verified bytes (the package must have
 * been verified with `keepBytes`) on a pool of inference threads, checks they fit their
 * roles, and returns the model. On failure nothing is left running.
 */
export async function loadOcrModel(pkg: VerifiedPackage, options: PoolOptions = {}): Promise<LoadedOcrModel> {
  const pool = await OcrWorkerPool.create(pkg, options);
  return {
    name: pkg.manifest.name,
    version: pkg.manifest.version,
    params: pool.params,
    read: (image) => pool.read(image),
    release: () => pool.release(),
  };
}
