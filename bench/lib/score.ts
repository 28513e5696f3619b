import { characterErrorRate } from '../../test/helpers/images.js';

/** Spaces are not compared: the PP-OCR recogniser drops them between Latin words, tesseract adds them between CJK characters. */
export const squeeze = (s: string) => s.replace(/\s+/g, '');

/** Character errors and exact lines of one page's reading against its truth. */
export function scorePage(
  truth: readonly string[],
  got: readonly string[],
): { errors: number; chars: number; exact: number } {
  const want = squeeze(truth.join(''));
  const have = squeeze(got.join(''));
  const exactSet = new Set(got.map(squeeze));
  return {
    errors: characterErrorRate(want, have) * [...want].length,
    chars: [...want].length,
    exact: truth.filter((l) => exactSet.has(squeeze(l))).length,
  };
}
