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
 * unused objects, packed in compressed object streams (PDF 1.5, with a cross-reference
 * stream): a few megabytes for a million objects. Nothing for a renderer, which never looks
 * at them, but a parser that reads the whole file (pdf-lib) has each of them to read and
 * write again.
 */
export function manyObjects(objects: number): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n')];
  let length = parts[0]!.length;
  /** Where each object is: in the file at an offset (type 1), or in an object stream (type 2). */
  const where: ([1, number] | [2, number, number])[] = [];
  const write = (body: Buffer | string) => {
    const number = where.length + 1;
    const text = Buffer.concat([
      Buffer.from(`${number} 0 obj\n`),
      Buffer.from(body),
      Buffer.from('\nendobj\n'),
    ]);
    where.push([1, length]);
    parts.push(text);
    length += text.length;
    return number;
  };
  const stream = (dict: string, data: Buffer) =>
    Buffer.concat([
      Buffer.from(`<< ${dict} /Length ${data.length} >>\nstream\n`),
      data,
      Buffer.from('\nendstream'),
    ]);
  const content = 'BT /F1 40 Tf 60 650 Td (MANY OBJECTS 77) Tj ET';
  write('<< /Type /Catalog /Pages 2 0 R >>');
  write('<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  write(
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>',
  );
  write(stream('', Buffer.from(content)));
  write('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>');
  // The small objects, 1000 to a stream; each stream's number is taken after its members'.
  const PER = 1000;
  for (let first = 0; first < objects; first += PER) {
    const count = Math.min(PER, objects - first);
    const base = where.length + 1;
    const bodies: string[] = [];
    const header: string[] = [];
    let offset = 0;
    for (let k = 0; k < count; k++) {
      const body = `[${first + k} ${first + k + 1} /X] `;
      header.push(`${base + k} ${offset}`);
      bodies.push(body);
      offset += body.length;
    }
    const head = `${header.join(' ')} `;
    const data = deflateSync(Buffer.from(head + bodies.join('')));
    const streamNumber = base + count;
    for (let k = 0; k < count; k++) where.push([2, streamNumber, k]);
    write(stream(`/Type /ObjStm /N ${count} /First ${head.length} /Filter /FlateDecode`, data));
  }
  // The cross-reference stream: a row of (type, field 2, field 3) per object, 1 + 4 + 2 bytes.
  const xrefNumber = where.length + 1;
  where.push([1, length]);
  const rows = Buffer.alloc((where.length + 1) * 7);
  rows.writeUInt8(0, 0);
  rows.writeUInt32BE(0, 1);
  rows.writeUInt16BE(0xffff, 5);
  where.forEach((w, i) => {
    const at = (i + 1) * 7;
    rows.writeUInt8(w[0], at);
    rows.writeUInt32BE(w[1], at + 1);
    rows.writeUInt16BE(w[0] === 2 ? w[2] : 0, at + 5);
  });
  const xref = deflateSync(rows);
  const xrefAt = length;
  parts.push(
    Buffer.from(`${xrefNumber} 0 obj\n`),
    stream(`/Type /XRef /Size ${where.length + 1} /W [1 4 2] /Root 1 0 R /Filter /FlateDecode`, xref),
    Buffer.from(`\nendobj\nstartxref\n${xrefAt}\n%%EOF\n`),
  );
  return Buffer.concat(parts);
}
