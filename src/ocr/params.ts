import type { Manifest } from '../package/index.js';
import type { DbParams } from './db-postprocess.js';

/**
 * Every pipeline parameter. The defaults are PaddleOCR's `tools/infer` values and its
 * reference pipeline, so a package that names none of the newer steps reads as it always
 * did; the bundled package turns them on in its config.json (docs/OCR.md).
 */
export interface OcrParams {
  readonly det: DbParams & {
    readonly limitSideLen: number;
    readonly limitType: 'max' | 'min';
    /**
     * Detect again at a larger scale (up to `maxSideLen`) when the first pass shows text too
     * small for its scale: regions dropped as narrower than `minSize`, or boxes narrower than
     * 16 pixels (detection.ts).
     */
    readonly rescale: boolean;
    /** The longest side the second pass may scale an image to. */
    readonly maxSideLen: number;
    /** Pad an image taken for one line (short, or very wide) with its border colour before detection. */
    readonly pad: boolean;
    /**
     * Reading order: `top-left` is PaddleOCR's (by the top-left corner, boxes within 10 px
     * ordered left to right); `lines` groups boxes into lines along the text's slant first.
     */
    readonly order: 'top-left' | 'lines';
  };
  readonly cls: {
    readonly enabled: boolean;
    readonly threshold: number;
    readonly imageHeight: number;
    readonly imageWidth: number;
    readonly batchSize: number;
    /** Classify a long line in windows of the classifier's width and average, rather than squeezed into one. */
    readonly windows: boolean;
    /**
     * 0: every line is classified before it is read, and turned when taken for upside down
     * (PaddleOCR's way). Above 0: lines are read first, and the classifier is asked only about
     * those read with a lower score than this; a line it takes for upside down is read turned,
     * and that reading kept only if its score is higher.
     */
    readonly confirmBelow: number;
  };
  readonly rec: {
    readonly imageHeight: number;
    /**
     * The narrowest width a crop is run at, padded with zeros (PaddleOCR's rec_image_shape
     * 3,48,320): the recogniser, trained on padded lines, misreads a lone character run at
     * its own width.
     */
    readonly imageWidth: number;
    readonly maxImageWidth: number;
    readonly batchSize: number;
    readonly dropScore: number;
    readonly useSpaceChar: boolean;
    /**
     * `padded`: crops batched by aspect ratio and right-padded with zeros to the batch's widest
     * (at least `imageWidth`), as PaddleOCR does; `own`: each crop run alone at its own width
     * (at least `imageWidth`).
     */
    readonly width: 'padded' | 'own';
    /**
     * In an image taken for one line (padded by `det.pad`), a crop reaches above and below its
     * box by up to this fraction of the box's height, into free space only (half the gap to
     * the next box at most).
     */
    readonly room: number;
    /** How crops lower than `imageHeight` are enlarged to it (larger ones are shrunk bilinearly either way). */
    readonly enlarge: 'bilinear' | 'bicubic';
    /**
     * A line read with a mean score under this is read again from PaddleOCR's reference input
     * (its box grown by the reference ratio 1.5 rather than `det.unclipRatio`, enlarged
     * bilinearly), and the reading with the higher score is kept. 0: never.
     */
    readonly retryBelow: number;
    /** Leave out spaces at either end of a line's text (a space read in the margin of a crop). */
    readonly trim: boolean;
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
    rescale: false,
    maxSideLen: 2048,
    pad: false,
    order: 'top-left',
  },
  // PaddleOCR's use_angle_cls defaults to off: the classifier squeezes a line to 192x48 and misreads
  // long Latin lines as upside down. With `windows` and `confirmBelow` it does not (docs/OCR.md).
  cls: {
    enabled: false,
    threshold: 0.9,
    imageHeight: 48,
    imageWidth: 192,
    batchSize: 6,
    windows: false,
    confirmBelow: 0,
  },
  rec: {
    imageHeight: 48,
    imageWidth: 320,
    maxImageWidth: 4096,
    batchSize: 6,
    dropScore: 0.5,
    useSpaceChar: true,
    width: 'padded',
    room: 0,
    enlarge: 'bilinear',
    retryBelow: 0,
    trim: false,
  },
}) as OcrParams;

/** The package's parameters over the defaults (a parsed manifest holds only the keys it gives). */
export function paramsFromManifest(m: Manifest): OcrParams {
  const d = DEFAULT_PARAMS;
  return { det: { ...d.det, ...m.det }, cls: { ...d.cls, ...m.cls }, rec: { ...d.rec, ...m.rec } };
}
