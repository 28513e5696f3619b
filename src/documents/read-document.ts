import { HotocrError } from '../errors.js';
import type { OcrResult, RgbImage } from '../ocr/index.js';
import type { OpenDocument } from './document.js';

/** One page read: its number (from 1), the size it was read at, its lines, and how long it took. */
export interface PageRead {
  readonly page: number;
  readonly width: number;
  readonly height: number;
  readonly result: OcrResult;
  /** Milliseconds spent rendering (or decoding) the page. */
  readonly render: number;
  /** The page's pixels: dropped after `onPage` returns unless it keeps them. */
  readonly image: RgbImage;
}

export interface ReadDocumentOptions {
  /** Stops between pages (and asks the model to stop within one) with REQUEST_ABORTED. */
  readonly signal?: AbortSignal;
  /** A performance.now() time: past it, no further page is started (TIMEOUT). */
  readonly deadline?: number;
}

/**
 * Reads the document's pages in order with `read`, handing each to `onPage` as it is done.
 * At most two pages are held at once: while one is read the next is rendered, and a page's
 * pixels are dropped once it is read, so memory does not grow with the page count.
 */
export async function readDocument(
  doc: OpenDocument,
  read: (image: RgbImage) => Promise<OcrResult>,
  onPage: (page: PageRead) => void | Promise<void>,
  options: ReadDocumentOptions = {},
): Promise<void> {
  const render = async (page: number) => {
    const t = performance.now();
    const image = await doc.render(page);
    return { image, ms: performance.now() - t };
  };
  let next: Promise<{ image: RgbImage; ms: number }> | undefined =
    doc.pages.length > 0 ? render(doc.pages[0]!) : undefined;
  try {
    for (let i = 0; i < doc.pages.length; i++) {
      const page = doc.pages[i]!;
      const { image, ms } = await next!;
      next = undefined;
      if (options.signal?.aborted)
        throw new HotocrError('REQUEST_ABORTED', `The client went away before page ${page} was read.`);
      if (options.deadline !== undefined && performance.now() > options.deadline)
        throw new HotocrError(
          'TIMEOUT',
          `The document took longer than the request timeout (--request-timeout-ms) before page ${page}; send fewer pages or retry later.`,
        );
      const reading = read(image);
      if (i + 1 < doc.pages.length) {
        next = render(doc.pages[i + 1]!);
        // Settled below, or dropped with the document when reading fails.
        next.catch(() => {});
      }
      const result = await reading;
      await onPage({ page, width: image.width, height: image.height, result, render: ms, image });
    }
  } finally {
    await next?.catch(() => {});
  }
}
