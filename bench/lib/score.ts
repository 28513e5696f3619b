import { characterErrorRate } from '../../test/helpers/images.js';

/**
 * How the benchmarks compare a page's reading with its truth. Two error rates, each the edit
 * distance over code points divided by the truth's length, both texts normalised alike:
 *
 * - **without spaces**: every whitespace character is left out, lines joined with nothing.
 * - **with spaces**: lines are joined with one space and every run of whitespace counts as
 *   one space (so a line read as two boxes, or a wide gap read as one space, costs nothing);
 *   leading and trailing spaces are left out; and a space with a CJK character (Han
 *   ideographs, CJK punctuation, fullwidth forms) on either side is left out: between Chinese
 *   and Latin text a space is a matter of typesetting, not a word boundary, and the truth
 *   itself does not always carry it. Every other missing, extra or wrong space is an error.
 *
 * A line is exact when some line read has the same text without spaces (`exact`), or with
 * them, normalised as above (`exactSpaced`).
 */
export const squeeze = (s: string): string => s.replace(/\s+/g, '');

const CJK = '\\u3000-\\u303f\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff\\uff00-\\uffef';
const SPACE_BY_CJK = new RegExp(`(?<=[${CJK}]) | (?=[${CJK}])`, 'gu');

/** A text as the "with spaces" rule compares it. */
export function spaced(s: string): string {
  return s.replace(/\s+/g, ' ').trim().replace(SPACE_BY_CJK, '');
}

export interface PageScore {
  /** Edit distance without spaces, and the truth's length without them. */
  errors: number;
  chars: number;
  /** Edit distance with spaces, and the truth's length with them. */
  spacedErrors: number;
  spacedChars: number;
  /** Truth lines read exactly, spaces left out and compared. */
  exact: number;
  exactSpaced: number;
}

/** Character errors (both rules) and exact lines of one page's reading against its truth. */
export function scorePage(truth: readonly string[], got: readonly string[]): PageScore {
  const want = squeeze(truth.join(''));
  const have = squeeze(got.join(''));
  const wantSpaced = spaced(truth.join(' '));
  const haveSpaced = spaced(got.join(' '));
  const exactSet = new Set(got.map(squeeze));
  const exactSpacedSet = new Set(got.map(spaced));
  return {
    errors: Math.round(characterErrorRate(want, have) * [...want].length),
    chars: [...want].length,
    spacedErrors: Math.round(characterErrorRate(wantSpaced, haveSpaced) * [...wantSpaced].length),
    spacedChars: [...wantSpaced].length,
    exact: truth.filter((l) => exactSet.has(squeeze(l))).length,
    exactSpaced: truth.filter((l) => exactSpacedSet.has(spaced(l))).length,
  };
}
