import { DocumentError } from '../errors.js';

/** A page range, both ends included, numbered from 1; `to` undefined runs to the last page. */
export interface PageRange {
  readonly from: number;
  readonly to: number | undefined;
}

const PART = /^(\d{1,6})(?:(-)(\d{1,6})?)?$/;

/**
 * Parses a page selection as printers take it: `1-3,7`, `5-` (to the end), `2`. Throws
 * PAGES_INVALID for anything else, or a range running backwards.
 */
export function parsePageSelection(text: string): PageRange[] {
  const parts = text.split(',').map((p) => p.trim());
  if (text.trim() === '' || parts.length > 100)
    throw new DocumentError(
      'PAGES_INVALID',
      `The page selection ${JSON.stringify(text.slice(0, 80))} is empty or too long; write it as 1-3,7.`,
    );
  return parts.map((part) => {
    const match = PART.exec(part);
    const from = Number(match?.[1]);
    const to = match?.[2] ? (match[3] ? Number(match[3]) : undefined) : from;
    if (!match || from < 1 || (to !== undefined && to < from))
      throw new DocumentError(
        'PAGES_INVALID',
        `${JSON.stringify(part.slice(0, 40))} is not a page or range; write pages as 1-3,7 (numbered from 1, ranges ascending).`,
      );
    return { from, to };
  });
}

/**
 * The pages (from 1, ascending, each once) a selection picks out of a document of `count`
 * pages; all of them without one. PAGES_INVALID when it names a page past the last.
 */
export function selectPages(ranges: readonly PageRange[] | undefined, count: number): number[] {
  if (!ranges) return Array.from({ length: count }, (_, i) => i + 1);
  const pages = new Set<number>();
  for (const { from, to } of ranges) {
    const last = to ?? count;
    if (from > count || last > count)
      throw new DocumentError(
        'PAGES_INVALID',
        `The document has ${count} page${count === 1 ? '' : 's'}; page ${Math.max(from, last)} is not one of them.`,
        { details: { pageCount: count } },
      );
    for (let page = from; page <= last; page++) pages.add(page);
  }
  return [...pages].sort((a, b) => a - b);
}
