import { deflateSync } from 'node:zlib';
import { PDFDocument, PDFName, PDFRawStream, StandardFonts } from 'pdf-lib';

/** A PDF of pages (Letter unless `size` says), each with its lines of text drawn large in Helvetica. */
export async function pdfOf(
  pages: readonly (readonly string[])[],
  size: [number, number] = [612, 792],
): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.HelveticaBold);
  for (const lines of pages) {
    const page = doc.addPage(size);
    lines.forEach((line, i) => {
      page.drawText(line, { x: 60, y: size[1] - 120 - i * 90, size: 40, font });
    });
  }
  return Buffer.from(await doc.save());
}

/**
 * A rendering bomb: Letter pages that all draw one compressed content stream of `rects` tiny
 * filled rectangles (drawn again and again over the same thousand places). Small on the wire
 * (a few hundred kilobytes for millions of rectangles), it keeps a renderer busy for seconds
 * per page.
 */
export async function renderBomb(rects: number, pages = 1): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const block: string[] = [];
  for (let i = 0; i < 1000; i++) block.push(`${(i * 7) % 600} ${(i * 13) % 780} 0.5 0.5 re f\n`);
  const flate = deflateSync(Buffer.from(block.join('').repeat(Math.ceil(rects / 1000))));
  const contents = doc.context.register(
    PDFRawStream.of(doc.context.obj({ Filter: 'FlateDecode', Length: flate.length }), flate),
  );
  for (let p = 0; p < pages; p++) doc.addPage([612, 792]).node.set(PDFName.of('Contents'), contents);
  return Buffer.from(await doc.save());
}

/**
 * A one-page PDF (a line of text drawn with a base font) that also holds `objects` small
 * unused objects: nothing for a renderer, which never looks at them, but a parser that reads
 * the whole file (pdf-lib) has each of them to read and write again.
 */
export function manyObjects(objects: number): Buffer {
  const parts: string[] = ['%PDF-1.7\n'];
  const offsets: number[] = [];
  let length = parts[0]!.length;
  const add = (body: string) => {
    offsets.push(length);
    const text = `${offsets.length} 0 obj\n${body}\nendobj\n`;
    parts.push(text);
    length += text.length;
  };
  const content = 'BT /F1 40 Tf 60 650 Td (MANY OBJECTS 77) Tj ET';
  add('<< /Type /Catalog /Pages 2 0 R >>');
  add('<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  add(
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>',
  );
  add(`<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
  add('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>');
  for (let i = 0; i < objects; i++) add(`[${i} ${i + 1} /X]`);
  parts.push(`xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n`);
  for (const offset of offsets) parts.push(`${String(offset).padStart(10, '0')} 00000 n \n`);
  parts.push(`trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`);
  return Buffer.from(parts.join(''), 'latin1');
}
