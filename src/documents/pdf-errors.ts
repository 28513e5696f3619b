/** FPDF_GetLastError's values (fpdfview.h). */
export const PDFIUM_ERROR = { success: 0, unknown: 1, file: 2, format: 3, password: 4, security: 5, page: 6 };

/** Why a PDF did not open: FPDF_GetLastError's value. */
export class PdfOpenError extends Error {
  constructor(readonly reason: number) {
    super(`PDFium could not open the document (error ${reason})`);
  }
}
