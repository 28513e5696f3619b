import { PDFiumModule } from '@hyzyla/pdfium';
import { PDFIUM_ERROR, PdfOpenError } from './pdf-errors.js';

/**
 * A thin adapter over PDFium compiled to WebAssembly (the `@hyzyla/pdfium` build): the few
 * calls hotocr needs, on raw handles, so that a page's size is known without loading it, a
 * page that fails to load is seen as such, and every page and bitmap is closed. One module
 * per process, made on first use; its calls are synchronous, so documents never interleave.
 */

type Pdfium = Awaited<ReturnType<typeof PDFiumModule>> & {
  _FPDF_InitLibrary(): void;
  _FPDF_GetPageSizeByIndex(document: number, index: number, width: number, height: number): number;
  _FPDF_GetSecurityHandlerRevision(document: number): number;
  _FPDFText_LoadPage(page: number): number;
  _FPDFText_CountChars(textPage: number): number;
  _FPDFText_ClosePage(textPage: number): void;
  HEAPF64: Float64Array;
};

const BITMAP_BGR = 2;
const FLAG_ANNOT = 0x01;
// With REVERSE_BYTE_ORDER a BGR bitmap comes out RGB, the order the OCR pipeline takes.
const FLAG_REVERSE_BYTE_ORDER = 0x10;
const WHITE = 0xffffffff;

let loading: Promise<Pdfium> | undefined;
let loaded: Pdfium | undefined;

/** Bytes of WebAssembly memory PDFium holds: it grows with the heaviest page rendered, and never shrinks. */
export function pdfiumHeapBytes(): number {
  return loaded?.HEAPU8.length ?? 0;
}

function pdfium(): Promise<Pdfium> {
  loading ??= (PDFiumModule({}) as Promise<Pdfium>).then(
    (module) => {
      module._FPDF_InitLibrary();
      loaded = module;
      return module;
    },
    (error: unknown) => {
      // Not kept: the next document tries again.
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** An open PDF. Close it; closing twice is harmless. */
export class PdfiumDocument {
  readonly #module: Pdfium;
  #handle: number;
  #bytes: number;

  private constructor(module: Pdfium, handle: number, bytes: number) {
    this.#module = module;
    this.#handle = handle;
    this.#bytes = bytes;
  }

  /**
   * Opens the PDF in `bytes` (copied into PDFium's memory), with `password` when it needs one
   * (its bytes, as the user typed them: UTF-8 for AES-256, Latin-1 for the older kinds), or
   * throws PdfOpenError.
   */
  static async open(bytes: Uint8Array, password?: Uint8Array): Promise<PdfiumDocument> {
    const m = await pdfium();
    const ptr = m.wasmExports.malloc(bytes.length);
    if (ptr === 0) throw new PdfOpenError(PDFIUM_ERROR.unknown);
    m.HEAPU8.set(bytes, ptr);
    let secret = 0;
    if (password && password.length > 0) {
      secret = m.wasmExports.malloc(password.length + 1);
      if (secret === 0) {
        m.wasmExports.free(ptr);
        throw new PdfOpenError(PDFIUM_ERROR.unknown);
      }
      m.HEAPU8.set(password, secret);
      m.HEAPU8[secret + password.length] = 0;
    }
    const handle = m._FPDF_LoadMemDocument(ptr, bytes.length, secret);
    if (secret !== 0) {
      // PDFium keeps its own copy; this one is wiped before it is freed.
      m.HEAPU8.fill(0, secret, secret + password!.length);
      m.wasmExports.free(secret);
    }
    if (handle === 0) {
      const reason = m._FPDF_GetLastError();
      m.wasmExports.free(ptr);
      throw new PdfOpenError(reason);
    }
    return new PdfiumDocument(m, handle, ptr);
  }

  get pageCount(): number {
    return this.#module._FPDF_GetPageCount(this.#live());
  }

  /** The size of page `index` (from 0) in points, read without loading the page; undefined when unreadable. */
  pageSize(index: number): { width: number; height: number } | undefined {
    const m = this.#module;
    const out = m.wasmExports.malloc(16);
    try {
      if (!m._FPDF_GetPageSizeByIndex(this.#live(), index, out, out + 8)) return undefined;
      return { width: m.HEAPF64[out / 8]!, height: m.HEAPF64[out / 8 + 1]! };
    } finally {
      m.wasmExports.free(out);
    }
  }

  /**
   * Renders page `index` (from 0) at `width` x `height` pixels onto white, as RGB. Undefined
   * when PDFium cannot load the page.
   */
  render(index: number, width: number, height: number): Uint8Array | undefined {
    const m = this.#module;
    const page = m._FPDF_LoadPage(this.#live(), index);
    if (page === 0) return undefined;
    const stride = width * 3;
    const size = stride * height;
    const buffer = m.wasmExports.malloc(size);
    if (buffer === 0) {
      m._FPDF_ClosePage(page);
      return undefined;
    }
    let bitmap = 0;
    try {
      bitmap = m._FPDFBitmap_CreateEx(width, height, BITMAP_BGR, buffer, stride);
      if (bitmap === 0) return undefined;
      m._FPDFBitmap_FillRect(bitmap, 0, 0, width, height, WHITE);
      m._FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, FLAG_ANNOT | FLAG_REVERSE_BYTE_ORDER);
      // A copy: PDFium's memory is reused by the next page.
      return m.HEAPU8.slice(buffer, buffer + size);
    } finally {
      if (bitmap !== 0) m._FPDFBitmap_Destroy(bitmap);
      m._FPDF_ClosePage(page);
      m.wasmExports.free(buffer);
    }
  }

  /** Whether the PDF is encrypted (opened without a password: only an owner password restricts it). */
  get encrypted(): boolean {
    return this.#module._FPDF_GetSecurityHandlerRevision(this.#live()) !== -1;
  }

  /** How many characters of text page `index` (from 0) holds: 0 for a scan, or a page that cannot be loaded. */
  textChars(index: number): number {
    const m = this.#module;
    const page = m._FPDF_LoadPage(this.#live(), index);
    if (page === 0) return 0;
    try {
      const text = m._FPDFText_LoadPage(page);
      if (text === 0) return 0;
      try {
        return Math.max(0, m._FPDFText_CountChars(text));
      } finally {
        m._FPDFText_ClosePage(text);
      }
    } finally {
      m._FPDF_ClosePage(page);
    }
  }

  close(): void {
    if (this.#handle === 0) return;
    this.#module._FPDF_CloseDocument(this.#handle);
    this.#module.wasmExports.free(this.#bytes);
    this.#handle = 0;
    this.#bytes = 0;
  }

  #live(): number {
    if (this.#handle === 0) throw new Error('the document is closed');
    return this.#handle;
  }
}
