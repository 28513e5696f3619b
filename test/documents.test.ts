// test-needs: model, documents
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { concatTransformationMatrix, degrees, PDFDocument, StandardFonts } from 'pdf-lib';
import pino from 'pino';
import sharp from 'sharp';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { renderText } from './helpers/images.js';
import { pdfOf } from './helpers/pdfs.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
let server: RunningServer;

interface DocumentBody {
  model: { name: string; version: string };
  pageCount: number;
  dpi: number;
  pages: { page: number; width: number; height: number; lines: { text: string; box: number[][] }[] }[];
  timings: Record<string, number>;
}

/** Text with its spaces taken out: the model may read `A B` as `AB`, which is no concern here. */
const squeeze = (text: string) => text.replace(/\s+/g, '');
const textOf = (page: DocumentBody['pages'][number]) => squeeze(page.lines.map((l) => l.text).join(''));
const pdftotext = (file: string) => squeeze(execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' }));

function ocr(body: Buffer, type: string, query = '', headers: Record<string, string> = {}) {
  return fetch(`${server.url}/v1/ocr${query}`, {
    method: 'POST',
    body,
    headers: { 'content-type': type, ...headers },
  });
}

async function codeOf(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

let twoPages: Buffer;

before(async () => {
  server = await startServer(
    readServeConfig(
      { port: '0', host: '127.0.0.1', data: join(work, 'home'), maxPages: '50', requestTimeoutMs: '120000' },
      {},
    ),
    pino({ level: 'silent' }),
  );
  twoPages = await pdfOf([['FIRST PAGE 1234'], ['SECOND PAGE 5678']]);
});
after(async () => {
  await server?.close();
});

describe('PDFs in', () => {
  test('reads a two-page PDF page by page, in order, with one version', async () => {
    const res = await ocr(twoPages, 'application/pdf');
    assert.equal(res.status, 200);
    const body = (await res.json()) as DocumentBody;
    assert.equal(res.headers.get('x-model-version'), `${body.model.name}/${body.model.version}`);
    assert.equal(body.pageCount, 2);
    assert.equal(body.dpi, 150);
    assert.deepEqual(
      body.pages.map((p) => [p.page, p.width, p.height]),
      [
        [1, 1275, 1650],
        [2, 1275, 1650],
      ],
    );
    assert.match(textOf(body.pages[0]!), /FIRSTPAGE1234/);
    assert.match(textOf(body.pages[1]!), /SECONDPAGE5678/);
    assert.ok(body.timings.render! > 0 && body.timings.total! >= body.timings.inference!);
  });

  test('?pages selects pages and ?dpi the resolution; a page past the last is PAGES_INVALID', async () => {
    const res = await ocr(twoPages, 'application/pdf', '?pages=2&dpi=100');
    assert.equal(res.status, 200);
    const body = (await res.json()) as DocumentBody;
    assert.deepEqual(
      body.pages.map((p) => [p.page, p.width, p.height]),
      [[2, 850, 1100]],
    );
    assert.match(textOf(body.pages[0]!), /SECONDPAGE5678/);
    const past = await ocr(twoPages, 'application/pdf', '?pages=1-3');
    assert.equal(past.status, 400);
    assert.equal(await codeOf(past), 'PAGES_INVALID');
    const malformed = await ocr(twoPages, 'application/pdf', '?pages=2-1');
    assert.equal(malformed.status, 400);
    assert.equal(await codeOf(malformed), 'PAGES_INVALID');
    const tooFine = await ocr(twoPages, 'application/pdf', '?dpi=2000');
    assert.equal(tooFine.status, 400);
  });

  test('?pageImages=true adds each page as read, a JPEG of the size its boxes are in', async () => {
    const res = await ocr(twoPages, 'application/pdf', '?pages=1&pageImages=true');
    assert.equal(res.status, 200);
    const [page] = ((await res.json()) as DocumentBody & { pages: { image?: string }[] }).pages;
    const jpeg = Buffer.from(page!.image!.replace(/^data:image\/jpeg;base64,/, ''), 'base64');
    const meta = await sharp(jpeg).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', page!.width, page!.height]);
    const plain = await ocr(twoPages, 'application/pdf', '?pages=1');
    assert.equal(((await plain.json()) as { pages: { image?: string }[] }).pages[0]!.image, undefined);
  });

  test('a PDF is read sent as a multipart file, and on the route that names its model', async () => {
    const form = new FormData();
    form.append('file', new Blob([twoPages], { type: 'application/pdf' }), 'doc.pdf');
    const res = await fetch(`${server.url}/v1/ocr?pages=1`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    const body = (await res.json()) as DocumentBody;
    assert.deepEqual(
      body.pages.map((p) => p.page),
      [1],
    );
    assert.match(textOf(body.pages[0]!), /FIRSTPAGE1234/);
    // The route that names its model takes documents alike.
    const named = await fetch(`${server.url}/v1/models/ppocr/ocr?pages=2`, {
      method: 'POST',
      body: twoPages,
      headers: { 'content-type': 'application/pdf' },
    });
    assert.equal(named.status, 200);
    assert.match(textOf(((await named.json()) as DocumentBody).pages[0]!), /SECONDPAGE5678/);
  });

  test('with Accept: application/pdf the answer is the PDF with a text layer pdftotext reads', async () => {
    const res = await ocr(twoPages, 'application/pdf', '', { accept: 'application/pdf' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pdf');
    const out = join(work, 'searchable.pdf');
    await writeFile(out, Buffer.from(await res.arrayBuffer()));
    // These pages have text of their own: they are kept as they are, not given a second copy
    // of it that search would find twice.
    const pages = execFileSync('pdftotext', ['-raw', out, '-'], { encoding: 'utf8' })
      .split('\f')
      .map(squeeze);
    assert.equal(pages[0]!.match(/FIRSTPAGE1234/g)?.length, 1, pages[0]);
    assert.equal(pages[1]!.match(/SECONDPAGE5678/g)?.length, 1, pages[1]);
    // The layer is invisible: rendered, the page looks as the original does.
    const info = execFileSync('pdfinfo', [out], { encoding: 'utf8' });
    assert.match(info, /Pages:\s+2/);
  });

  test('a scanned PDF (a picture of text, no text of its own) becomes searchable', async () => {
    const picture = await renderText(['SCANNED 2468', '扫描的中文'], { px: 48 });
    const doc = await PDFDocument.create();
    const image = await doc.embedPng(picture);
    const page = doc.addPage([image.width, image.height]);
    page.drawImage(image, { x: 0, y: 0, width: image.width, height: image.height });
    // A second page with text of its own: only the scanned one gets a layer.
    const font = await doc.embedFont(StandardFonts.Helvetica);
    doc.addPage([image.width, image.height]).drawText('TYPED 1357', { x: 10, y: 10, size: 24, font });
    const scanned = Buffer.from(await doc.save());
    const input = join(work, 'scanned.pdf');
    await writeFile(input, scanned);
    assert.doesNotMatch(pdftotext(input), /2468/);
    const res = await ocr(scanned, 'application/pdf', '?dpi=72', { accept: 'application/pdf' });
    assert.equal(res.status, 200);
    const out = join(work, 'scanned-searchable.pdf');
    await writeFile(out, Buffer.from(await res.arrayBuffer()));
    const text = pdftotext(out);
    assert.equal(text.match(/SCANNED2468/g)?.length, 1, text);
    // Any script: the layer's font maps every character back to its Unicode text.
    assert.match(text, /扫描的中文/);
    assert.equal(text.match(/TYPED1357/g)?.length, 1, text);
    // The layer's font is embedded (PDF/A and strict viewers want every font so), and poppler
    // renders the copy without a word about it.
    const fonts = execFileSync('pdffonts', [out], { encoding: 'utf8' });
    assert.match(fonts, /GlyphLessFont\s+CID TrueType\s+Identity-H\s+yes\s+no\s+yes/, fonts);
    const rendered = spawnSync('pdftoppm', ['-r', '20', '-png', out, join(work, 'scanned-rendered')], {
      encoding: 'utf8',
    });
    assert.equal(rendered.status, 0);
    assert.equal(rendered.stderr, '');
  });

  test('the layer lands on its line on pages turned by /Rotate, and on a page cropped off its origin', async () => {
    const picture = await renderText(['PLACED 8642'], { px: 48 });
    const doc = await PDFDocument.create();
    const image = await doc.embedPng(picture);
    const { width: w, height: h } = image;
    // Each picture drawn turned so that it reads upright once its page is turned (clockwise).
    for (const [turn, x, y] of [
      [0, 50, 250],
      [90, 150, 50],
      [180, 550, 150],
      [270, 450, 350],
    ] as const) {
      const page = doc.addPage([600, 400]);
      page.setRotation(degrees(turn));
      page.drawImage(image, { x, y, width: w, height: h, rotate: degrees(turn) });
    }
    const cropped = doc.addPage([800, 600]);
    cropped.setCropBox(200, 100, 500, 300);
    cropped.drawImage(image, { x: 260, y: 300, width: w, height: h });
    const pdf = Buffer.from(await doc.save());
    const json = await ocr(pdf, 'application/pdf', '?dpi=72');
    assert.equal(json.status, 200);
    const read = (await json.json()) as DocumentBody;
    const copy = await ocr(pdf, 'application/pdf', '?dpi=72', { accept: 'application/pdf' });
    assert.equal(copy.status, 200);
    const out = join(work, 'turned-searchable.pdf');
    await writeFile(out, Buffer.from(await copy.arrayBuffer()));
    // pdftotext places each word as the page is displayed (its crop box, with -cropbox), in
    // points: at 72 dpi, the read page's pixels.
    const html = execFileSync('pdftotext', ['-bbox', '-cropbox', out, '-'], { encoding: 'utf8' });
    const pages = html.split('<page ').slice(1);
    assert.equal(pages.length, 5);
    for (const [i, pageHtml] of pages.entries()) {
      const words = [
        ...pageHtml.matchAll(/<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">/g),
      ].map((m) => m.slice(1).map(Number) as [number, number, number, number]);
      const line = read.pages[i]!.lines.find((l) => /PLACED/.test(l.text));
      assert.ok(line && words.length > 0, `page ${i + 1}: ${JSON.stringify(read.pages[i]!.lines)}`);
      const xs = line.box.map((p) => p[0]!);
      const ys = line.box.map((p) => p[1]!);
      const layer = {
        x0: Math.min(...words.map((b) => b[0])),
        x1: Math.max(...words.map((b) => b[2])),
        y: (Math.min(...words.map((b) => b[1])) + Math.max(...words.map((b) => b[3]))) / 2,
      };
      const what = `page ${i + 1}: layer ${JSON.stringify(layer)}, line ${JSON.stringify(line.box)}`;
      assert.ok(Math.abs(layer.x0 - Math.min(...xs)) < 8 && Math.abs(layer.x1 - Math.max(...xs)) < 8, what);
      assert.ok(Math.abs(layer.y - (Math.min(...ys) + Math.max(...ys)) / 2) < 8, what);
    }
  });

  test("the layer lands on its line though the page's own content leaves a transformation in force", async () => {
    const picture = await renderText(['PLACED 8642'], { px: 48 });
    /** Where pdftotext finds the word PLACED in the searchable copy of a page made by `make`. */
    const placed = async (dangling: boolean) => {
      const doc = await PDFDocument.create();
      const image = await doc.embedPng(picture);
      const page = doc.addPage([image.width * 2, image.height * 2]);
      page.drawImage(image, { x: 0, y: image.height, width: image.width, height: image.height });
      // A `cm` with no `q ... Q` around it, as some producers leave: it draws nothing more, and
      // must not move the layer (pdf-lib wraps a page's own content in q ... Q when it adds any).
      if (dangling) page.pushOperators(concatTransformationMatrix(0.5, 0, 0, 0.5, 0, 0));
      const res = await ocr(Buffer.from(await doc.save()), 'application/pdf', '?dpi=72', {
        accept: 'application/pdf',
      });
      assert.equal(res.status, 200);
      const out = join(work, `placed-${dangling}.pdf`);
      await writeFile(out, Buffer.from(await res.arrayBuffer()));
      const html = execFileSync('pdftotext', ['-bbox', out, '-'], { encoding: 'utf8' });
      const word =
        /<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">PLACED<\/word>/.exec(html);
      assert.ok(word, html);
      return word.slice(1).map(Number);
    };
    const clean = await placed(false);
    const dangling = await placed(true);
    for (const [i, v] of clean.entries())
      assert.ok(Math.abs(v - dangling[i]!) < 1, `${clean} against ${dangling}`);
  });
});

describe('bad documents and limits', () => {
  test('a 300-page PDF is refused with 413 before a page is rendered', async () => {
    const big = await pdfOf(Array.from({ length: 300 }, (_, i) => [`PAGE ${i + 1}`]));
    const started = performance.now();
    const res = await ocr(big, 'application/pdf');
    const took = performance.now() - started;
    assert.equal(res.status, 413);
    assert.equal(await codeOf(res), 'DOCUMENT_TOO_LARGE');
    // Reading even ten of its pages would take longer than this.
    assert.ok(took < 2000, `refused in ${took.toFixed(0)} ms`);
    assert.equal(server.registry.active()!.inflight, 0);
    // Selecting pages within the limit reads them.
    const some = await ocr(big, 'application/pdf', '?pages=300');
    assert.equal(some.status, 200);
    assert.match(textOf(((await some.json()) as DocumentBody).pages[0]!), /PAGE300/);
  });

  test('a page that would render past the pixel limit is refused with 413, naming the page', async () => {
    const huge = await pdfOf([['SMALL'], ['HUGE']]);
    const doc = await PDFDocument.load(huge);
    doc.getPage(1).setSize(5000, 5000);
    const res = await ocr(Buffer.from(await doc.save()), 'application/pdf', '?dpi=300');
    assert.equal(res.status, 413);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'PAGE_TOO_LARGE');
    assert.match(body.error.message, /^Page 2 /);
  });

  test('a page that cannot be rendered refuses the document, naming the page; the others can be selected', async () => {
    // Written by hand: page 2 of the page tree is not a page at all.
    const objects = [
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>',
      '42',
    ];
    let text = '%PDF-1.4\n';
    const offsets = objects.map((object, i) => {
      const at = text.length;
      text += `${i + 1} 0 obj\n${object}\nendobj\n`;
      return at;
    });
    const xref = text.length;
    text += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
    for (const at of offsets) text += `${String(at).padStart(10, '0')} 00000 n \n`;
    text += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
    const broken = Buffer.from(text, 'latin1');
    const res = await ocr(broken, 'application/pdf');
    assert.equal(res.status, 422);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'PAGE_RENDER_FAILED');
    assert.match(body.error.message, /^Page 2 /);
    const first = await ocr(broken, 'application/pdf', '?pages=1');
    assert.equal(first.status, 200);
    assert.deepEqual(
      ((await first.json()) as DocumentBody).pages.map((p) => p.page),
      [1],
    );
  });

  test('an encrypted PDF is 422 DOCUMENT_ENCRYPTED', async () => {
    const plain = join(work, 'plain.pdf');
    const locked = join(work, 'locked.pdf');
    await writeFile(plain, twoPages);
    execFileSync('qpdf', ['--encrypt', 'user-secret', 'owner-secret', '256', '--', plain, locked]);
    const res = await ocr(await readFile(locked), 'application/pdf');
    assert.equal(res.status, 422);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'DOCUMENT_ENCRYPTED');
    assert.match(body.error.message, /X-Document-Password/);
  });

  test('X-Document-Password opens a PDF that needs one; a wrong one is DOCUMENT_ENCRYPTED', async () => {
    const plain = join(work, 'plain-pw.pdf');
    await writeFile(plain, twoPages);
    // AES-256 passwords are UTF-8 (qpdf takes them as typed); the older kinds' are Latin-1.
    for (const [bits, password] of [
      ['256', 'clé-secrète'],
      ['128', 'user-secret'],
    ] as const) {
      const locked = join(work, `locked-${bits}.pdf`);
      const aes = bits === '128' ? ['--use-aes=y'] : [];
      execFileSync('qpdf', ['--encrypt', password, 'owner-secret', bits, ...aes, '--', plain, locked]);
      const bytes = await readFile(locked);
      // A header's bytes are the client's: Node gives them as Latin-1, and sends them back as such.
      const raw = Buffer.from(password, 'utf8').toString('latin1');
      const res = await ocr(bytes, 'application/pdf', '?pages=2', { 'x-document-password': raw });
      assert.equal(res.status, 200, `${bits}: ${await res.clone().text()}`);
      assert.match(textOf(((await res.json()) as DocumentBody).pages[0]!), /SECONDPAGE5678/);
      const owner = await ocr(bytes, 'application/pdf', '?pages=1', {
        'x-document-password': 'owner-secret',
      });
      assert.equal(owner.status, 200, `${bits}: the owner password opens it too`);
      const wrong = await ocr(bytes, 'application/pdf', '', { 'x-document-password': 'guess' });
      assert.equal(wrong.status, 422);
      const refusal = (await wrong.json()) as { error: { code: string; message: string } };
      assert.equal(refusal.error.code, 'DOCUMENT_ENCRYPTED');
      assert.match(refusal.error.message, /password given does not open/);
      assert.doesNotMatch(JSON.stringify(refusal), /guess/);
      // No searchable copy is written of an encrypted PDF, even opened.
      const pdf = await ocr(bytes, 'application/pdf', '', {
        'x-document-password': raw,
        accept: 'application/pdf',
      });
      assert.equal(pdf.status, 422);
      assert.equal(await codeOf(pdf), 'DOCUMENT_ENCRYPTED');
    }
  });

  test('a PDF with only an owner password is read; a searchable copy is refused before a page is read', async () => {
    const plain = join(work, 'plain-owner.pdf');
    const restricted = join(work, 'owner-only.pdf');
    await writeFile(plain, twoPages);
    execFileSync('qpdf', ['--encrypt', '', 'owner-secret', '256', '--', plain, restricted]);
    const bytes = await readFile(restricted);
    const json = await ocr(bytes, 'application/pdf');
    assert.equal(json.status, 200);
    assert.match(textOf(((await json.json()) as DocumentBody).pages[1]!), /SECONDPAGE5678/);
    // Ten pages take seconds to read: the refusal comes when the document is opened.
    const longer = join(work, 'plain-owner-10.pdf');
    await writeFile(longer, await pdfOf(Array.from({ length: 10 }, (_, i) => [`OWNER PAGE ${i + 1}`])));
    execFileSync('qpdf', ['--encrypt', '', 'owner-secret', '256', '--', longer, restricted]);
    const started = performance.now();
    const pdf = await ocr(await readFile(restricted), 'application/pdf', '', { accept: 'application/pdf' });
    assert.equal(pdf.status, 422);
    assert.equal(await codeOf(pdf), 'DOCUMENT_ENCRYPTED');
    assert.ok(performance.now() - started < 1500, `${(performance.now() - started).toFixed(0)} ms`);
  });

  test('a PDF padded after its end (NULs, spaces) is read; one with a kilobyte of anything else after it is not', async () => {
    for (const padding of [Buffer.alloc(4096), Buffer.alloc(2048, ' ')]) {
      const res = await ocr(Buffer.concat([twoPages, padding]), 'application/pdf', '?pages=1');
      assert.equal(res.status, 200, await res.clone().text());
      assert.match(textOf(((await res.json()) as DocumentBody).pages[0]!), /FIRSTPAGE1234/);
    }
    const junk = await ocr(Buffer.concat([twoPages, Buffer.alloc(2048, 'A')]), 'application/pdf');
    assert.equal(junk.status, 400);
    assert.equal(await codeOf(junk), 'DOCUMENT_INVALID');
  });

  test('truncated, junk and corrupt PDFs are 400 DOCUMENT_INVALID', async () => {
    const truncated = await ocr(twoPages.subarray(0, Math.floor(twoPages.length * 0.6)), 'application/pdf');
    assert.equal(truncated.status, 400);
    assert.equal(await codeOf(truncated), 'DOCUMENT_INVALID');
    const junk = await ocr(Buffer.from('this is not a pdf at all, just words'), 'application/pdf');
    assert.equal(junk.status, 400);
    assert.equal(await codeOf(junk), 'DOCUMENT_INVALID');
    const corrupt = await ocr(
      Buffer.from('%PDF-1.7\n1 0 obj garbage endobj\ntrailer <<>>\n%%EOF\n'),
      'application/pdf',
    );
    assert.equal(corrupt.status, 400);
    assert.equal(await codeOf(corrupt), 'DOCUMENT_INVALID');
    // Nothing is held after a refusal.
    assert.equal(server.registry.active()!.inflight, 0);
  });

  test('a client that disconnects mid-document frees its lease and its slot', async () => {
    const pages = 40;
    const long = await pdfOf(
      Array.from({ length: pages }, (_, i) => [`LONG DOCUMENT ${i + 1}`, 'MORE TEXT HERE']),
    );
    const version = server.registry.active()!;
    const controller = new AbortController();
    const started = performance.now();
    const request = fetch(`${server.url}/v1/ocr`, {
      method: 'POST',
      body: long,
      headers: { 'content-type': 'application/pdf' },
      signal: controller.signal,
    }).catch((error: unknown) => error);
    await until(() => version.inflight === 1, 'the document is being read');
    // Let it read into the document, then go away.
    await until(() => performance.now() - started > 1500, 'a page or two read');
    controller.abort();
    assert.ok((await request) instanceof Error);
    const aborted = performance.now();
    await until(() => version.inflight === 0, 'the aborted document released its lease');
    assert.equal(server.app.server.listening, true);
    const freedIn = performance.now() - aborted;
    // The rest of the document would take seconds a page; the lease goes within the page being read.
    const one = performance.now();
    const after = await ocr(await pdfOf([['AFTER 1']]), 'application/pdf');
    assert.equal(after.status, 200);
    const perPage = performance.now() - one;
    assert.ok(
      freedIn < perPage * 3,
      `freed in ${freedIn.toFixed(0)} ms; a page takes ${perPage.toFixed(0)} ms`,
    );
  });
});

describe('one version per document', () => {
  test('a version activated while a document is read does not read its remaining pages', async () => {
    const before = server.registry.active()!;
    const doc = await pdfOf(Array.from({ length: 20 }, (_, i) => [`SWAP PAGE ${i + 1}`]));
    const reading = ocr(doc, 'application/pdf');
    await until(() => before.inflight === 1, 'the document is being read');
    const src = await writeBundledSource(join(work, 'src-9.0.0'), '9.0.0');
    const next = join(work, 'ppocr-9.0.0.zip');
    await pack(src, { signer: await keyFileSigner(join(work, 'home', 'dev-key', 'signing.key')), out: next });
    await server.registry.offer(next, { source: 'upload' });
    assert.equal(server.registry.active()!.version, '9.0.0');
    // The old version drains: it is still held by the document.
    assert.equal(before.inflight, 1);
    const res = await reading;
    assert.equal(res.status, 200);
    const body = (await res.json()) as DocumentBody;
    assert.equal(body.model.version, before.version);
    assert.equal(res.headers.get('x-model-version'), `ppocr/${before.version}`);
    assert.equal(body.pages.length, 20);
    assert.match(textOf(body.pages[19]!), /SWAPPAGE20/);
    assert.equal(before.inflight, 0);
    // The next document goes to the new version.
    const after = await ocr(await pdfOf([['NEW VERSION 1']]), 'application/pdf');
    assert.equal(((await after.json()) as DocumentBody).model.version, '9.0.0');
  });

  test('the request timeout covers every page: past it, 503 TIMEOUT and the lease is freed', async () => {
    const quick = await startServer(
      readServeConfig(
        { port: '0', host: '127.0.0.1', data: join(work, 'home-quick'), requestTimeoutMs: '1500' },
        {},
      ),
      pino({ level: 'silent' }),
    );
    try {
      const long = await pdfOf(
        Array.from({ length: 40 }, (_, i) => [`TIMED PAGE ${i + 1}`, 'MORE TEXT HERE']),
      );
      const res = await fetch(`${quick.url}/v1/ocr`, {
        method: 'POST',
        body: long,
        headers: { 'content-type': 'application/pdf' },
      });
      assert.equal(res.status, 503);
      assert.equal(await codeOf(res), 'TIMEOUT');
      const version = quick.registry.active()!;
      // The page being read finishes; no further one is started.
      await until(() => version.inflight === 0, 'the timed-out document released its lease', 10_000);
    } finally {
      await quick.close();
    }
  });
});

describe('TIFFs in', () => {
  test('a multi-page TIFF is read page by page; a single-page TIFF keeps the image answer', async () => {
    const first = await renderText(['TIFF ONE 1357'], { px: 40 });
    const second = await renderText(['TIFF TWO 9753'], { px: 40 });
    // sharp writes a multi-page TIFF from frames joined as an animation.
    const tiff = await sharp([first, second], { join: { animated: true } })
      .tiff({ compression: 'lzw' })
      .toBuffer();
    assert.equal((await sharp(tiff).metadata()).pages, 2);
    const res = await ocr(tiff, 'image/tiff');
    assert.equal(res.status, 200);
    const body = (await res.json()) as DocumentBody;
    assert.deepEqual(
      body.pages.map((p) => p.page),
      [1, 2],
    );
    assert.match(textOf(body.pages[0]!), /TIFFONE1357/);
    assert.match(textOf(body.pages[1]!), /TIFFTWO9753/);

    const single = await ocr(await sharp(first).tiff().toBuffer(), 'image/tiff');
    assert.equal(single.status, 200);
    const image = (await single.json()) as { lines: { text: string }[]; pages?: unknown };
    assert.equal(image.pages, undefined);
    assert.match(squeeze(image.lines.map((l) => l.text).join('')), /TIFFONE1357/);

    const searchable = await ocr(tiff, 'image/tiff', '?pages=2', { accept: 'application/pdf' });
    assert.equal(searchable.status, 200);
    const out = join(work, 'tiff.pdf');
    await writeFile(out, Buffer.from(await searchable.arrayBuffer()));
    const text = pdftotext(out);
    assert.match(text, /TIFFTWO9753/);
    assert.doesNotMatch(text, /1357/);
  });
});

describe('hotocr ocr', () => {
  const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
  const hotocr = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
        env: { ...process.env, HOTOCR_HOME: join(work, 'cli-home') },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      return error as { code: number; stdout: string; stderr: string };
    }
  };

  test('reads a PDF page by page, one JSON object per page, and writes it searchable', async () => {
    const input = join(work, 'cli.pdf');
    const out = join(work, 'cli-searchable.pdf');
    await writeFile(input, twoPages);
    const r = await hotocr('ocr', input, '--json', '--searchable-pdf', out);
    assert.equal(r.code, 0, r.stderr);
    const pages = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DocumentBody['pages'][number] & { file: string; model: unknown });
    assert.deepEqual(
      pages.map((p) => [p.file, p.page, p.width, p.height]),
      [
        [input, 1, 1275, 1650],
        [input, 2, 1275, 1650],
      ],
    );
    assert.match(textOf(pages[0]!), /FIRSTPAGE1234/);
    assert.match(textOf(pages[1]!), /SECONDPAGE5678/);
    assert.match(pdftotext(out), /SECONDPAGE5678/);

    const some = await hotocr('ocr', input, '--pages', '2', '--dpi', '100');
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stdout, /^.*cli\.pdf page 2: \d+ lines \(850x1100, /);
    assert.doesNotMatch(some.stdout, /page 1:/);

    const limited = await hotocr('ocr', input, '--max-pages', '1');
    assert.equal(limited.code, 1);
    assert.match(limited.stderr, /cli\.pdf: DOCUMENT_TOO_LARGE: /);
  });

  test('--password-file opens a PDF that needs a password', async () => {
    const input = join(work, 'cli-locked.pdf');
    const plain = join(work, 'cli-plain.pdf');
    await writeFile(plain, twoPages);
    execFileSync('qpdf', ['--encrypt', 'cli-secret', 'owner-secret', '256', '--', plain, input]);
    const without = await hotocr('ocr', input);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /DOCUMENT_ENCRYPTED: .*--password-file/);
    const file = join(work, 'cli-password');
    await writeFile(file, 'cli-secret\n');
    const r = await hotocr('ocr', input, '--pages', '1', '--password-file', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(squeeze(r.stdout), /FIRSTPAGE1234/);
    // As a Windows editor saves it: a byte-order mark, and CRLF; neither is part of the password.
    await writeFile(file, '\ufeffcli-secret\r\n');
    const saved = await hotocr('ocr', input, '--pages', '1', '--password-file', file);
    assert.equal(saved.code, 0, saved.stderr);
    await writeFile(file, '\n');
    const empty = await hotocr('ocr', input, '--password-file', file);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /holds no password/);
  });
});
