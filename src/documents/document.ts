import sharp, { type Metadata } from 'sharp';
import { DocumentError, HotocrError, messageOf } from '../errors.js';
import { decodeImage, type RgbImage } from '../ocr/index.js';
import { bodyKind } from './kind.js';
import { type PageRange, selectPages } from './page-selection.js';
import { PDFIUM_ERROR, PdfOpenError } from './pdf-errors.js';
import { type OpenOptions, PdfiumTrap, RemotePdf } from './pdf-thread.js';

/** Resolution PDF pages are rendered at unless a request asks for another. */
export const DEFAULT_DPI = 150;
export const MIN_DPI = 36;
export const MAX_DPI = 600;
export const DEFAULT_MAX_PAGES = 50;
/** Pixels of one rendered page (a Letter page at 600 dpi is 33.7 megapixels). */
export const DEFAULT_MAX_PAGE_PIXELS = 36_000_000;

export interface DocumentOptions {
  /** Resolution PDF pages are rendered at (default {@link DEFAULT_DPI}). */
  readonly dpi?: number;
  /** Pages to read; all without. */
  readonly pages?: readonly PageRange[];
  /** Most pages one document may have read (default {@link DEFAULT_MAX_PAGES}). */
  readonly maxPages?: number;
  /** Most pixels of one rendered page (default {@link DEFAULT_MAX_PAGE_PIXELS}). */
  readonly maxPagePixels?: number;
  /**
   * A performance.now() time past which PDFium is not let run on the document: a page still
   * rendering then stops the renderer, and the call fails with TIMEOUT.
   */
  readonly deadline?: number;
  /** The PDF's password, as the bytes typed, for one that needs one to open. */
  readonly password?: Uint8Array;
}

/** A document opened and checked against its limits: nothing rendered yet. */
export interface OpenDocument {
  /** `pdf` for PDFs, `image` for TIFFs (and any image read as a one-page document). */
  readonly kind: 'pdf' | 'image';
  /** Pages in the document. */
  readonly pageCount: number;
  /** The pages to read, from 1, ascending. */
  readonly pages: readonly number[];
  /** Resolution PDF pages are rendered at; for images, their own resolution when they state one. */
  readonly dpi: number;
  /** The bytes the document was opened from. */
  readonly bytes: Uint8Array;
  /** Renders (or decodes) page `page` (from 1) to RGB; PAGE_RENDER_FAILED, naming it, when it cannot. */
  render(page: number): Promise<RgbImage>;
  /** Whether the document is encrypted (a PDF with an owner password; never for images). */
  readonly encrypted: boolean;
  /** Whether page `page` (from 1) has text of its own (born digital, or given a text layer before): never for images. */
  hasText(page: number): Promise<boolean>;
  /** Frees the renderer's copy of the document; harmless twice. */
  close(): void;
}

const MIN_SIDE = 8;

/**
 * Opens a PDF or a (multi-page) image and checks it before any page is rendered: a body that
 * is neither, or a PDF cut short, is DOCUMENT_INVALID; one that needs a password
 * DOCUMENT_ENCRYPTED; more pages selected than `maxPages` DOCUMENT_TOO_LARGE; a page that
 * would render past `maxPagePixels` PAGE_TOO_LARGE; `pages` past the last PAGES_INVALID.
 */
export async function openDocument(bytes: Uint8Array, options: DocumentOptions = {}): Promise<OpenDocument> {
  const limits = {
    dpi: options.dpi ?? DEFAULT_DPI,
    maxPages: options.maxPages ?? DEFAULT_MAX_PAGES,
    maxPagePixels: options.maxPagePixels ?? DEFAULT_MAX_PAGE_PIXELS,
  };
  if (!(limits.dpi >= MIN_DPI && limits.dpi <= MAX_DPI))
    throw new HotocrError(
      'REQUEST_INVALID',
      `The resolution must be ${MIN_DPI} to ${MAX_DPI} dpi, not ${limits.dpi}.`,
    );
  const kind = bodyKind(bytes);
  if (kind === 'pdf')
    return openPdf(bytes, options.pages, limits, { deadline: options.deadline, password: options.password });
  return openImages(bytes, options.pages, limits);
}

/** Pages of an image (several for a multi-page TIFF); 1 when its header cannot be read. */
export async function imagePageCount(bytes: Uint8Array): Promise<number> {
  return sharp(bytes, { limitInputPixels: false })
    .metadata()
    .then(
      (meta) => meta.pages ?? 1,
      () => 1,
    );
}

type Limits = { dpi: number; maxPages: number; maxPagePixels: number };

function checkCount(pages: readonly number[], limits: Limits): void {
  if (pages.length > limits.maxPages)
    throw new DocumentError(
      'DOCUMENT_TOO_LARGE',
      `The document has ${pages.length} pages to read; at most ${limits.maxPages} are read per request (--max-pages). Send fewer pages, or select some with ?pages=.`,
      { details: { pages: pages.length, maxPages: limits.maxPages } },
    );
}

function checkPixels(page: number, width: number, height: number, limits: Limits): void {
  if (width * height > limits.maxPagePixels)
    throw new DocumentError(
      'PAGE_TOO_LARGE',
      `Page ${page} would be ${width}x${height} pixels (${((width * height) / 1e6).toFixed(1)} megapixels); at most ${(limits.maxPagePixels / 1e6).toFixed(1)} megapixels are rendered per page (--max-page-pixels). Ask for a lower resolution with ?dpi=.`,
      { details: { page, width, height, maxPagePixels: limits.maxPagePixels } },
    );
  if (width < MIN_SIDE || height < MIN_SIDE)
    throw new DocumentError(
      'PAGE_RENDER_FAILED',
      `Page ${page} would be ${width}x${height} pixels, too small to hold text; ask for a higher resolution with ?dpi=.`,
      { details: { page, width, height } },
    );
}

/** Bytes a file may be padded with after its end: NUL and PDF whitespace. */
const PADDING = new Uint8Array(256);
for (const b of [0x00, 0x09, 0x0a, 0x0c, 0x0d, 0x20]) PADDING[b] = 1;

/**
 * A PDF whose end marker is missing was cut short; PDFium would repair it and read what is
 * left. After its last `%%EOF` a file may carry a kilobyte of anything (readers look for the
 * marker there), or padding of any length: some systems pad files with NULs or spaces.
 */
function looksTruncated(bytes: Uint8Array): boolean {
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const end = file.lastIndexOf('%%EOF');
  if (end < 0) return true;
  if (file.length - (end + 5) <= 1024) return false;
  // A plain loop: megabytes of padding are looked at in milliseconds.
  for (let i = end + 5; i < file.length; i++) if (PADDING[file[i]!] === 0) return true;
  return false;
}

async function openPdf(
  bytes: Uint8Array,
  selection: readonly PageRange[] | undefined,
  limits: Limits,
  open: OpenOptions,
) {
  if (looksTruncated(bytes))
    throw new DocumentError(
      'DOCUMENT_INVALID',
      'The PDF is truncated: it does not end with %%EOF (within its last kilobyte, or followed by padding alone). Send the whole file.',
    );
  let pdf: RemotePdf;
  try {
    pdf = await RemotePdf.open(bytes, open);
  } catch (error) {
    if (error instanceof PdfiumTrap)
      throw new DocumentError('DOCUMENT_INVALID', `PDFium failed opening the PDF (${error.message}).`, {
        cause: error,
      });
    if (!(error instanceof PdfOpenError)) throw error;
    if (error.reason === PDFIUM_ERROR.password)
      throw new DocumentError(
        'DOCUMENT_ENCRYPTED',
        open.password?.length
          ? 'The password given does not open the PDF; send its own password (the user or the owner password).'
          : 'The PDF is encrypted with a password: send it with the document (X-Document-Password; hotocr ocr --password-file), or send the PDF decrypted.',
        { cause: error, details: { passwordGiven: Boolean(open.password?.length) } },
      );
    if (error.reason === PDFIUM_ERROR.security)
      throw new DocumentError(
        'DOCUMENT_ENCRYPTED',
        'The PDF is encrypted with a security handler PDFium cannot open (not the standard password one); send it decrypted.',
        { cause: error },
      );
    throw new DocumentError(
      'DOCUMENT_INVALID',
      'The bytes are not a PDF that can be read: corrupt or not a PDF.',
      {
        cause: error,
      },
    );
  }
  try {
    const pageCount = pdf.pageCount;
    if (pageCount < 1) throw new DocumentError('DOCUMENT_INVALID', 'The PDF has no pages.');
    const pages = selectPages(selection, pageCount);
    checkCount(pages, limits);
    const scale = limits.dpi / 72;
    const sizes = new Map<number, { width: number; height: number }>();
    const measured = await pdf.pageSizes(pages.map((p) => p - 1)).catch((error: unknown) => {
      if (!(error instanceof PdfiumTrap)) throw error;
      throw new DocumentError(
        'DOCUMENT_INVALID',
        `PDFium failed reading the PDF's pages (${error.message}).`,
        {
          cause: error,
        },
      );
    });
    for (const [i, page] of pages.entries()) {
      const size = measured[i];
      if (!size || !(size.width > 0 && size.height > 0))
        throw new DocumentError(
          'PAGE_RENDER_FAILED',
          `Page ${page} of the PDF cannot be read: its size is missing or invalid.`,
          {
            details: { page },
          },
        );
      const pixels = { width: Math.floor(size.width * scale), height: Math.floor(size.height * scale) };
      checkPixels(page, pixels.width, pixels.height, limits);
      sizes.set(page, pixels);
    }
    return {
      kind: 'pdf' as const,
      encrypted: pdf.encrypted,
      pageCount,
      pages,
      dpi: limits.dpi,
      bytes,
      async render(page: number): Promise<RgbImage> {
        const { width, height } = sizes.get(page)!;
        const data = await pdf.render(page - 1, width, height).catch(trappedOn(page, 'rendering'));
        if (!data)
          throw new DocumentError(
            'PAGE_RENDER_FAILED',
            `Page ${page} of the PDF cannot be rendered; the document is refused.`,
            {
              details: { page },
            },
          );
        return { data, width, height };
      },
      hasText: async (page: number) =>
        (await pdf.textChars(page - 1).catch(trappedOn(page, 'reading the text of'))) > 0,
      close: () => pdf.close(),
    };
  } catch (error) {
    pdf.close();
    throw error;
  }
}

/** PDFium trapped on a page (out of its memory, an abort): the page's doing, said naming it. */
function trappedOn(page: number, doing: string) {
  return (error: unknown): never => {
    if (!(error instanceof PdfiumTrap)) throw error;
    throw new DocumentError(
      'PAGE_RENDER_FAILED',
      `PDFium failed ${doing} page ${page} (${error.message}); the document is refused.`,
      { cause: error, details: { page } },
    );
  };
}

async function openImages(bytes: Uint8Array, selection: readonly PageRange[] | undefined, limits: Limits) {
  let pageCount: number;
  let density: number | undefined;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    pageCount = meta.pages ?? 1;
    density = meta.density;
  } catch (cause) {
    throw new DocumentError(
      'DOCUMENT_INVALID',
      'The bytes are neither a PDF nor an image hotocr can read (PNG, JPEG, WebP or TIFF).',
      { cause },
    );
  }
  const pages = selectPages(selection, pageCount);
  checkCount(pages, limits);
  for (const page of pages) {
    let meta: Metadata;
    try {
      meta = await sharp(bytes, { limitInputPixels: false, page: page - 1 }).metadata();
    } catch (cause) {
      throw new DocumentError('PAGE_RENDER_FAILED', `Page ${page} cannot be read: ${messageOf(cause)}.`, {
        cause,
        details: { page },
      });
    }
    checkPixels(page, meta.width ?? 0, meta.height ?? 0, limits);
  }
  return {
    kind: 'image' as const,
    encrypted: false,
    pageCount,
    pages,
    dpi: density && density > 0 ? density : 72,
    bytes,
    async render(page: number): Promise<RgbImage> {
      try {
        return await decodeImage(bytes, {
          page: page - 1,
          maxPixels: limits.maxPagePixels,
          minSide: MIN_SIDE,
        });
      } catch (cause) {
        if (!(cause instanceof HotocrError)) throw cause;
        throw new DocumentError(
          'PAGE_RENDER_FAILED',
          `Page ${page} cannot be decoded (${cause.message}); the document is refused.`,
          {
            cause,
            details: { page },
          },
        );
      }
    },
    hasText: async () => false,
    close: () => {},
  };
}
