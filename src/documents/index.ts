export {
  DEFAULT_DPI,
  DEFAULT_MAX_PAGE_PIXELS,
  DEFAULT_MAX_PAGES,
  type DocumentOptions,
  imagePageCount,
  MAX_DPI,
  MIN_DPI,
  type OpenDocument,
  openDocument,
} from './document.js';
export { type BodyKind, bodyKind, isPdf, isTiff } from './kind.js';
export { jpegDataUrl } from './page-image.js';
export { type PageRange, parsePageSelection, selectPages } from './page-selection.js';
export { type PdfRendererStats, pdfRendererStats, RETIRE_HEAP_BYTES } from './pdf-thread.js';
export { type PageRead, type ReadDocumentOptions, readDocument } from './read-document.js';
export { checkRewritable, type PageText, searchablePdf } from './searchable-pdf.js';
