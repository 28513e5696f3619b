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
