import zlib from 'node:zlib';

const { openDocument } = await import('/work/main/dist/src/documents/index.js');
// Minimal PDF writer: objects as strings, computes xref.
function pdf(objs) {
  const out = '%PDF-1.7\n';
  const offs = [];
  const parts = [Buffer.from(out, 'latin1')];
  let pos = parts[0].length;
  objs.forEach((o, i) => {
    offs.push(pos);
    const b = Buffer.isBuffer(o)
      ? Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), o, Buffer.from('\nendobj\n')])
      : Buffer.from(`${i + 1} 0 obj\n${o}\nendobj\n`, 'latin1');
    parts.push(b);
    pos += b.length;
  });
  let x =
    `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n` +
    offs.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  x += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${pos}\n%%EOF\n`;
  parts.push(Buffer.from(x, 'latin1'));
  return Buffer.concat(parts);
}
function stream(dict, data) {
  return Buffer.concat([
    Buffer.from(`<< ${dict} /Length ${data.length} >>\nstream\n`, 'latin1'),
    data,
    Buffer.from('\nendstream', 'latin1'),
  ]);
}
const cases = {
  cyclicPages: pdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>',
  ]),
  hugeMediaBox: pdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1e9 1e9] >>',
  ]),
  zeroMediaBox: pdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 0 0] >>',
  ]),
  lyingCount: pdf([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 100000000 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>',
  ]),
  imageBomb: (() => {
    const img = zlib.deflateSync(Buffer.alloc(200 * 1024 * 1024));
    return pdf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 5 0 R >> >> /Contents 4 0 R >>',
      stream('', Buffer.from('q 612 0 0 792 0 0 cm /Im1 Do Q')),
      stream(
        '/Type /XObject /Subtype /Image /Width 100000 /Height 100000 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode',
        img,
      ),
    ]);
  })(),
  noCatalog: pdf(['<< /Type /Foo >>']),
};
for (const [name, bytes] of Object.entries(cases)) {
  const t = performance.now();
  try {
    const d = await openDocument(bytes, {});
    let msg = `opened ${d.pageCount} pages [${d.pages.slice(0, 5)}]`;
    try {
      const img = await d.render(d.pages[0]);
      msg += ` rendered ${img.width}x${img.height}`;
    } catch (e) {
      msg += ` render: ${e.code ?? e.name}: ${e.message}`;
    }
    d.close();
    console.log(name, bytes.length, msg, Math.round(performance.now() - t), 'ms');
  } catch (e) {
    console.log(name, bytes.length, e.code ?? e.name, e.message, Math.round(performance.now() - t), 'ms');
  }
}
process.exit(0);
