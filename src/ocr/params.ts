import type { Manifest } from '../package/index.js';
import type { DbParams } from './db-postprocess.js';

/** Every pipeline parameter; defaults are PaddleOCR's `tools/infer` values. */
export interface OcrParams {
  readonly det: DbParams & { readonly limitSideLen: number; readonly limitType: 'max' | 'min' };
  readonly cls: {
    readonly enabled: boolean;
    readonly threshold: number;
    readonly imageHeight: number;
    readonly imageWidth: number;
    readonly batchSize: number;
  };
  readonly rec: {
    readonly imageHeight: number;
    /** The narrowest batch width (PaddleOCR's rec_image_shape 3,48,320). */
    readonly imageWidth: number;
    readonly maxImageWidth: number;
    readonly batchSize: number;
    readonly dropScore: number;
    readonly useSpaceChar: boolean;
  };
}

export const DEFAULT_PARAMS: OcrParams = Object.freeze({
  det: {
    limitSideLen: 960,
    limitType: 'max',
    thresh: 0.3,
    boxThresh: 0.6,
    unclipRatio: 1.5,
    maxCandidates: 1000,
    minSize: 3,
  },
  // PaddleOCR's use_angle_cls defaults to off: the classifier squeezes a line to 192x48 and misreads
  // long Latin lines as upside down. A package turns it on for images that may be upside down.
  cls: { enabled: false, threshold: 0.9, imageHeight: 48, imageWidth: 192, batchSize: 6 },
  rec: {
    imageHeight: 48,
    imageWidth: 320,
    maxImageWidth: 4096,
    batchSize: 6,
    dropScore: 0.5,
    useSpaceChar: true,
  },
}) as OcrParams;

/** The package's parameters over the defaults (a parsed manifest holds only the keys it gives). */
export function paramsFromManifest(m: Manifest): OcrParams {
  const d = DEFAULT_PARAMS;
  return { det: { ...d.det, ...m.det }, cls: { ...d.cls, ...m.cls }, rec: { ...d.rec, ...m.rec } };
}
