import {
  beginText,
  endText,
  PDFDocument,
  type PDFFont,
  type PDFPage,
  popGraphicsState,
  pushGraphicsState,
  StandardFonts,
  setFontAndSize,
  setTextMatrix,
  setTextRenderingMode,
  showText,
  TextRenderingMode,
} from 'pdf-lib';
import sharp from 'sharp';
import { DocumentError } from '../errors.js';
import type { Quad } from '../ocr/index.js';
import type { OpenDocument } from './document.js';

/** A page's lines as read, in the pixels of the image the page was read from. */
export interface PageText {
  readonly page: number;
  readonly width: number;
  readonly height: number;
  readonly lines: readonly { readonly text: string; readonly box: Quad }[];
}

type Box = { x: number; y: number; width: number; height: number };

/**
 * The document's pages read, as a PDF whose every line is also invisible text placed over
 * its box, so that text search, selection and `pdftotext` find it. A PDF keeps its own pages
 * (only those read, in order); images become pages of their own, as JPEG at their resolution.
 * A PDF page that has text of its own already (born digital, or given a layer before) is
 * kept as it is: a second copy of its text would make search and `pdftotext` find every
 * word twice. Text is set in Helvetica: characters outside its Latin set are written as `?`.
 */
export async function searchablePdf(doc: OpenDocument, pages: readonly PageText[]): Promise<Uint8Array> {
  const out = doc.kind === 'pdf' ? await trimmed(doc, pages) : await PDFDocument.create();
  const font = await out.embedFont(StandardFonts.Helvetica);
  const known = new Set(font.getCharacterSet());
  for (const [i, page] of pages.entries()) {
    let target: PDFPage;
    let crop: Box;
    let rotation = 0;
    if (doc.kind === 'pdf') {
      target = out.getPage(i);
      if (doc.hasText(page.page)) continue;
      crop = target.getCropBox();
      rotation = (((target.getRotation().angle % 360) + 360) % 360) as number;
    } else {
      const image = await doc.render(page.page);
      const jpeg = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer();
      const size = { width: (image.width * 72) / doc.dpi, height: (image.height * 72) / doc.dpi };
      target = out.addPage([size.width, size.height]);
      target.drawImage(await out.embedJpg(jpeg), { x: 0, y: 0, ...size });
      crop = { x: 0, y: 0, ...size };
    }
    writeLines(target, font, known, page, crop, rotation);
  }
  return out.save();
}

/** The original PDF with the pages not read removed. */
async function trimmed(doc: OpenDocument, pages: readonly PageText[]): Promise<PDFDocument> {
  let pdf: PDFDocument;
  try {
    pdf = await PDFDocument.load(doc.bytes, { updateMetadata: false });
  } catch (cause) {
    throw new DocumentError(
      'DOCUMENT_INVALID',
      'The PDF was read, but its structure cannot be rewritten with a text layer; ask for JSON instead.',
      { cause },
    );
  }
  const keep = new Set(pages.map((p) => p.page));
  for (let index = pdf.getPageCount() - 1; index >= 0; index--)
    if (!keep.has(index + 1)) pdf.removePage(index);
  return pdf;
}

/**
 * Each line as invisible text (rendering mode 3) stretched over its box. Boxes are in the
 * rendered page's pixels, top-left origin, as the page is displayed (its /Rotate applied);
 * they are mapped back to the page's own coordinates.
 */
function writeLines(
  page: PDFPage,
  font: PDFFont,
  known: ReadonlySet<number>,
  text: PageText,
  crop: Box,
  rotation: number,
): void {
  const turned = rotation === 90 || rotation === 270;
  const shown = turned
    ? { width: crop.height, height: crop.width }
    : { width: crop.width, height: crop.height };
  const sx = shown.width / text.width;
  const sy = shown.height / text.height;
  // Displayed point (u right, v down, in points) to the page's own coordinates.
  const toPage = (u: number, v: number): [number, number] => {
    switch (rotation) {
      case 90:
        return [crop.x + v, crop.y + u];
      case 180:
        return [crop.x + crop.width - u, crop.y + v];
      case 270:
        return [crop.x + crop.width - v, crop.y + crop.height - u];
      default:
        return [crop.x + u, crop.y + crop.height - v];
    }
  };
  const angle = (rotation * Math.PI) / 180;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const name = page.node.newFontDictionary(font.name, font.ref);
  const operators = [pushGraphicsState(), beginText(), setTextRenderingMode(TextRenderingMode.Invisible)];
  let written = 0;
  for (const line of text.lines) {
    const chars = [...line.text].map((c) => (known.has(c.codePointAt(0)!) ? c : '?')).join('');
    if (chars.trim() === '') continue;
    const xs = line.box.map((p) => p[0]);
    const ys = line.box.map((p) => p[1]);
    const left = Math.min(...xs) * sx;
    const right = Math.max(...xs) * sx;
    const top = Math.min(...ys) * sy;
    const bottom = Math.max(...ys) * sy;
    const height = bottom - top;
    const width = right - left;
    const natural = font.widthOfTextAtSize(chars, 1);
    if (!(height > 0 && width > 0 && natural > 0)) continue;
    // An em as tall as the box, the baseline a fifth of it above the box's bottom, and the
    // text stretched to the box's width: selection and search highlight the line where it is.
    const [x, y] = toPage(left, bottom - height * 0.2);
    const h = width / natural;
    const v = height;
    operators.push(
      setFontAndSize(name, 1),
      setTextMatrix(h * cos, h * sin, -v * sin, v * cos, x, y),
      showText(font.encodeText(chars)),
    );
    written++;
  }
  operators.push(endText(), popGraphicsState());
  if (written > 0) page.pushOperators(...operators);
}
