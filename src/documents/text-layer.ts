import {
  beginText,
  endText,
  ParseSpeeds,
  PDFDocument,
  PDFHexString,
  PDFName,
  type PDFPage,
  type PDFRef,
  PDFString,
  popGraphicsState,
  pushGraphicsState,
  setFontAndSize,
  setTextMatrix,
  setTextRenderingMode,
  showText,
  TextRenderingMode,
} from 'pdf-lib';
import { DocumentError } from '../errors.js';
import type { Quad } from '../ocr/index.js';
import { BLANK_GLYPH, GLYPHLESS_FONT } from './glyphless-font.js';

/** A page's lines as read, in the pixels of the image the page was read from. */
export interface PageText {
  readonly page: number;
  readonly width: number;
  readonly height: number;
  readonly lines: readonly { readonly text: string; readonly box: Quad }[];
}

type Box = { x: number; y: number; width: number; height: number };

/** A page to write: its lines, and how the page itself is had. */
export type LayerPage = PageText &
  (
    | { readonly source: 'pdf'; readonly hasText: boolean }
    | {
        readonly source: 'image';
        readonly jpeg: Uint8Array;
        readonly size: { width: number; height: number };
      }
  );

/** What a searchable copy is made of: the PDF's own bytes (for a PDF), and each page read. */
export interface LayerInput {
  readonly kind: 'pdf' | 'image';
  readonly bytes?: Uint8Array;
  readonly pages: readonly LayerPage[];
}

/**
 * The document's pages read, as a PDF whose every line is also invisible text placed over
 * its box, so that text search, selection and `pdftotext` find it. A PDF keeps its own pages
 * (only those read, in order); images become pages of their own, from their JPEG. A PDF page
 * that has text of its own already (born digital, or given a layer before) is kept as it is:
 * a second copy of its text would make search and `pdftotext` find every word twice. The
 * text is in any script ({@link TextFont}). Pure pdf-lib work: it runs on a thread of its
 * own (searchable-pdf.ts), since a PDF of many objects costs seconds to parse and write.
 */
export async function layeredPdf(input: LayerInput): Promise<Uint8Array> {
  const out = input.kind === 'pdf' ? await trimmed(input.bytes!, input.pages) : await PDFDocument.create();
  const font = textFont(out, input.pages);
  for (const [i, page] of input.pages.entries()) {
    let target: PDFPage;
    let crop: Box;
    let rotation = 0;
    if (page.source === 'pdf') {
      target = out.getPage(i);
      if (page.hasText) continue;
      crop = target.getCropBox();
      rotation = (((target.getRotation().angle % 360) + 360) % 360) as number;
    } else {
      target = out.addPage([page.size.width, page.size.height]);
      target.drawImage(await out.embedJpg(page.jpeg), { x: 0, y: 0, ...page.size });
      crop = { x: 0, y: 0, ...page.size };
    }
    writeLines(target, font, page, crop, rotation);
  }
  return out.save({ objectsPerTick: Number.POSITIVE_INFINITY });
}

/** The original PDF with the pages not read removed. */
async function trimmed(bytes: Uint8Array, pages: readonly PageText[]): Promise<PDFDocument> {
  let pdf: PDFDocument;
  try {
    // On a thread of its own: no pauses between objects to let other work run (pdf-lib's default).
    pdf = await PDFDocument.load(bytes, { updateMetadata: false, parseSpeed: ParseSpeeds.Fastest });
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
function writeLines(page: PDFPage, font: TextFont, text: PageText, crop: Box, rotation: number): void {
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
  const name = page.node.newFontDictionary(FONT_NAME, font.ref);
  const operators = [pushGraphicsState(), beginText(), setTextRenderingMode(TextRenderingMode.Invisible)];
  let written = 0;
  for (const line of text.lines) {
    const chars = [...line.text];
    if (line.text.trim() === '') continue;
    const xs = line.box.map((p) => p[0]);
    const ys = line.box.map((p) => p[1]);
    const left = Math.min(...xs) * sx;
    const right = Math.max(...xs) * sx;
    const top = Math.min(...ys) * sy;
    const bottom = Math.max(...ys) * sy;
    const height = bottom - top;
    const width = right - left;
    // Every glyph is an em wide.
    const natural = chars.length;
    if (!(height > 0 && width > 0 && natural > 0)) continue;
    // An em as tall as the box, the baseline a fifth of it above the box's bottom, and the
    // text stretched to the box's width: selection and search highlight the line where it is.
    const [x, y] = toPage(left, bottom - height * 0.2);
    const h = width / natural;
    const v = height;
    operators.push(
      setFontAndSize(name, 1),
      setTextMatrix(h * cos, h * sin, -v * sin, v * cos, x, y),
      showText(font.encode(chars)),
    );
    written++;
  }
  operators.push(endText(), popGraphicsState());
  if (written > 0) page.pushOperators(...operators);
}

const FONT_NAME = 'GlyphLessFont';

/**
 * The font the text layer is set in: a composite font without glyphs (its text is never
 * drawn), each character of the document a code of its own, mapped back to its Unicode text
 * by a ToUnicode map, as Tesseract's PDF output does. Search, selection and `pdftotext` read
 * any script with it (Chinese as well as Latin), where a standard font's character set is
 * Latin alone.
 */
interface TextFont {
  readonly ref: PDFRef;
  /** The characters as codes of this font, for a text-showing operator. */
  encode(chars: readonly string[]): PDFHexString;
}

function textFont(pdf: PDFDocument, pages: readonly PageText[]): TextFont {
  // One code per distinct character, from 1 (0 is left unused), in the order first met.
  const codes = new Map<string, number>();
  for (const page of pages)
    for (const line of page.lines)
      for (const c of line.text) if (!codes.has(c) && codes.size < 0xfffe) codes.set(c, codes.size + 1);
  const hex4 = (n: number) => n.toString(16).padStart(4, '0');
  const utf16 = (c: string) => [...Array(c.length).keys()].map((i) => hex4(c.charCodeAt(i))).join('');
  const entries = [...codes].map(([c, code]) => `<${hex4(code)}> <${utf16(c)}>`);
  const blocks: string[] = [];
  // At most 100 mappings to a block (the CMap format's limit).
  for (let i = 0; i < entries.length; i += 100) {
    const block = entries.slice(i, i + 100);
    blocks.push(`${block.length} beginbfchar\n${block.join('\n')}\nendbfchar`);
  }
  const cmap = [
    '/CIDInit /ProcSet findresource begin',
    '12 dict begin',
    'begincmap',
    '/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def',
    '/CMapName /Adobe-Identity-UCS def',
    '/CMapType 2 def',
    '1 begincodespacerange',
    '<0000> <FFFF>',
    'endcodespacerange',
    ...blocks,
    'endcmap',
    'CMapName currentdict /CMap defineresource pop',
    'end',
    'end',
  ].join('\n');
  const { context } = pdf;
  const program = context.flateStream(GLYPHLESS_FONT, { Length1: GLYPHLESS_FONT.length });
  const descriptor = context.register(
    context.obj({
      Type: 'FontDescriptor',
      FontName: FONT_NAME,
      Flags: 4,
      FontBBox: [0, 0, 1000, 1000],
      ItalicAngle: 0,
      Ascent: 1000,
      Descent: 0,
      CapHeight: 1000,
      StemV: 80,
      FontFile2: context.register(program),
    }),
  );
  // Every code (1 to the last used) shown with the blank glyph; 0 with .notdef.
  const gids = new Uint8Array((codes.size + 1) * 2);
  for (let code = 1; code <= codes.size; code++) gids[code * 2 + 1] = BLANK_GLYPH;
  const descendant = context.register(
    context.obj({
      Type: 'Font',
      Subtype: 'CIDFontType2',
      BaseFont: FONT_NAME,
      CIDSystemInfo: { Registry: PDFString.of('Adobe'), Ordering: PDFString.of('Identity'), Supplement: 0 },
      FontDescriptor: descriptor,
      DW: 1000,
      CIDToGIDMap: context.register(context.flateStream(gids)),
    }),
  );
  const ref = context.register(
    context.obj({
      Type: 'Font',
      Subtype: 'Type0',
      BaseFont: FONT_NAME,
      Encoding: PDFName.of('Identity-H'),
      DescendantFonts: [descendant],
      ToUnicode: context.register(context.flateStream(cmap)),
    }),
  );
  return {
    ref,
    encode: (chars) => PDFHexString.of(chars.map((c) => hex4(codes.get(c) ?? 0)).join('')),
  };
}
