import type { OcrParams, OcrResult, RgbImage } from '../ocr/index.js';
import type { VerifiedPackage } from '../verify/index.js';
import { OcrWorkerPool, type PoolOptions, type ReadOptions } from './worker-pool.js';

/** An OCR model loaded from a verified package, ready to read images. */
export interface LoadedOcrModel {
  readonly name: string;
  readonly version: string;
  readonly params: OcrParams;
  /**
   * Reads every line of text. An aborted `signal` stops the work at the next stage boundary
   * (a stage already running on a thread finishes first) and rejects with REQUEST_ABORTED.
   */
  read(image: RgbImage, options?: ReadOptions): Promise<OcrResult>;
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
    read: (image, readOptions) => pool.read(image, readOptions),
    release: () => pool.release(),
  };
}
