/**
 * The program of the text layer's font: a TrueType font of two glyphs, `.notdef` and one
 * that draws nothing and is 1000 units wide, which every character of the layer is shown
 * with (the layer is invisible; its characters' Unicode comes from the ToUnicode map).
 * Embedded, so that PDF/A validators and strict viewers find every font in the file, as
 * Tesseract's and OCRmyPDF's output embed theirs. The tables are the ones a TrueType font
 * in a PDF needs (head, hhea, maxp, hmtx, loca, glyf), with cmap and post for the tools
 * that look for them.
 */

const UNITS_PER_EM = 1000;
const GLYPHS = 2;

function table(size: number, fill: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(size);
  fill(new DataView(bytes.buffer));
  return bytes;
}

const head = table(54, (v) => {
  v.setUint32(0, 0x00010000); // version
  v.setUint32(4, 0x00010000); // fontRevision
  v.setUint32(8, 0); // checkSumAdjustment, set once the font is assembled
  v.setUint32(12, 0x5f0f3cf5); // magicNumber
  v.setUint16(16, 0b1011); // flags: baseline at 0, left sidebearing at 0, integer scaling
  v.setUint16(18, UNITS_PER_EM);
  // created, modified (8 bytes each): 0
  v.setInt16(36, 0); // xMin
  v.setInt16(38, 0); // yMin
  v.setInt16(40, UNITS_PER_EM); // xMax
  v.setInt16(42, UNITS_PER_EM); // yMax
  v.setUint16(44, 0); // macStyle
  v.setUint16(46, 8); // lowestRecPPEM
  v.setInt16(48, 2); // fontDirectionHint
  v.setInt16(50, 0); // indexToLocFormat: short offsets
  v.setInt16(52, 0); // glyphDataFormat
});

const hhea = table(36, (v) => {
  v.setUint32(0, 0x00010000);
  v.setInt16(4, UNITS_PER_EM); // ascender
  v.setInt16(6, 0); // descender
  v.setInt16(8, 0); // lineGap
  v.setUint16(10, UNITS_PER_EM); // advanceWidthMax
  v.setInt16(18, 1); // caretSlopeRise
  v.setUint16(34, GLYPHS); // numberOfHMetrics
});

const maxp = table(32, (v) => {
  v.setUint32(0, 0x00010000);
  v.setUint16(4, GLYPHS);
  v.setUint16(14, 2); // maxZones
});

/** Both glyphs 1000 units wide, left sidebearing 0. */
const hmtx = table(GLYPHS * 4, (v) => {
  for (let g = 0; g < GLYPHS; g++) v.setUint16(g * 4, UNITS_PER_EM);
});

/** Short offsets (halved) of each glyph and the end: every glyph empty. */
const loca = table((GLYPHS + 1) * 2, () => {});

const glyf = new Uint8Array(0);

/** One Windows Unicode subtable (format 4) with only its closing segment: no character has a glyph by code. */
const cmap = table(4 + 8 + 24, (v) => {
  v.setUint16(0, 0); // version
  v.setUint16(2, 1); // numTables
  v.setUint16(4, 3); // platform: Windows
  v.setUint16(6, 1); // encoding: Unicode BMP
  v.setUint32(8, 12); // offset of the subtable
  const s = 12;
  v.setUint16(s, 4); // format
  v.setUint16(s + 2, 24); // length
  v.setUint16(s + 4, 0); // language
  v.setUint16(s + 6, 2); // segCountX2
  v.setUint16(s + 8, 2); // searchRange
  v.setUint16(s + 10, 0); // entrySelector
  v.setUint16(s + 12, 0); // rangeShift
  v.setUint16(s + 14, 0xffff); // endCode
  v.setUint16(s + 16, 0); // reservedPad
  v.setUint16(s + 18, 0xffff); // startCode
  v.setInt16(s + 20, 1); // idDelta
  v.setUint16(s + 22, 0); // idRangeOffset
});

/** Format 3: no glyph names. */
const post = table(32, (v) => {
  v.setUint32(0, 0x00030000);
});

function checksum(bytes: Uint8Array): number {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  const v = new DataView(padded.buffer);
  let sum = 0;
  for (let i = 0; i < padded.length; i += 4) sum = (sum + v.getUint32(i)) >>> 0;
  return sum;
}

function assemble(): Uint8Array {
  const tables: [string, Uint8Array][] = (
    [
      ['cmap', cmap],
      ['glyf', glyf],
      ['head', head],
      ['hhea', hhea],
      ['hmtx', hmtx],
      ['loca', loca],
      ['maxp', maxp],
      ['post', post],
    ] as [string, Uint8Array][]
  ).sort(([a], [b]) => (a < b ? -1 : 1));
  const count = tables.length;
  const entrySelector = Math.floor(Math.log2(count));
  const searchRange = 2 ** entrySelector * 16;
  let offset = 12 + count * 16;
  const placed = tables.map(([tag, bytes]) => {
    const at = offset;
    offset += Math.ceil(bytes.length / 4) * 4;
    return { tag, bytes, at };
  });
  const font = new Uint8Array(offset);
  const v = new DataView(font.buffer);
  v.setUint32(0, 0x00010000);
  v.setUint16(4, count);
  v.setUint16(6, searchRange);
  v.setUint16(8, entrySelector);
  v.setUint16(10, count * 16 - searchRange);
  placed.forEach(({ tag, bytes, at }, i) => {
    const r = 12 + i * 16;
    for (let k = 0; k < 4; k++) v.setUint8(r + k, tag.charCodeAt(k));
    v.setUint32(r + 4, checksum(bytes));
    v.setUint32(r + 8, at);
    v.setUint32(r + 12, bytes.length);
    font.set(bytes, at);
  });
  // head's checkSumAdjustment makes the whole font sum to 0xB1B0AFBA.
  const headAt = placed.find((t) => t.tag === 'head')!.at;
  v.setUint32(headAt + 8, (0xb1b0afba - checksum(font)) >>> 0);
  return font;
}

/** The font program (a TrueType file), the same bytes every time. */
export const GLYPHLESS_FONT: Uint8Array = assemble();
/** The glyph every character is shown with. */
export const BLANK_GLYPH = 1;
