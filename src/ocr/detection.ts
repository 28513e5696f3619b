import type { DbResult } from './db-postprocess.js';
import type { OcrParams } from './params.js';

type DetParams = OcrParams['det'];

/**
 * Boxes narrower than this (in detection-input pixels, margin included) hold text small for
 * the scale they were found at: there the detector misses the shortest pieces of such text
 * (a digit, one character) altogether, leaving regions too narrow to keep.
 */
export const SMALL_TEXT = 16;
/** A second pass scales the narrowest box to about this many pixels. */
const TARGET_TEXT = 24;

/** The first pass's scale: PaddleOCR's limit (`max`: longest side at most, `min`: shortest side at least `limitSideLen`). */
export function firstRatio(width: number, height: number, p: DetParams): number {
  if (p.limitType === 'max') {
    const side = Math.max(width, height);
    return side > p.limitSideLen ? p.limitSideLen / side : 1;
  }
  const side = Math.min(width, height);
  return side < p.limitSideLen ? p.limitSideLen / side : 1;
}

/** The detector's input size at `ratio`: each side rounded to a multiple of 32, at least 32. */
export function inputSize(width: number, height: number, ratio: number): [number, number] {
  return [
    Math.max(Math.round((width * ratio) / 32) * 32, 32),
    Math.max(Math.round((height * ratio) / 32) * 32, 32),
  ];
}

/**
 * The scale of a second pass, when the first (at `ratio`) shows text too small for it:
 * regions dropped as too narrow (then twice the first scale), or boxes narrower than
 * {@link SMALL_TEXT} (then enough to bring the narrowest to {@link TARGET_TEXT}, at most
 * twice). The longest side stays within `maxSideLen`; no second pass when rescaling is off,
 * nothing small was seen, or the bound leaves less than a quarter more.
 */
export function secondRatio(
  width: number,
  height: number,
  ratio: number,
  found: Pick<DbResult, 'dropped' | 'narrowest'>,
  p: DetParams,
): number | undefined {
  if (!p.rescale) return undefined;
  const factor =
    found.dropped > 0 ? 2 : found.narrowest < SMALL_TEXT ? Math.min(2, TARGET_TEXT / found.narrowest) : 1;
  const next = Math.min(ratio * factor, p.maxSideLen / Math.max(width, height));
  return next >= ratio * 1.25 ? next : undefined;
}
