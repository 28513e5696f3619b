// test-needs: model
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { openDocument } from '../src/documents/index.js';
import { pdfRendererStats, RemotePdf } from '../src/documents/pdf-thread.js';
import { HotocrError } from '../src/errors.js';
import { manyObjects, pdfOf, renderBomb } from './helpers/pdfs.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
let server: RunningServer;
const TIMEOUT_MS = 3000;

function ocr(body: Buffer) {
  return fetch(`${server.url}/v1/ocr`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/pdf' },
  });
}

before(async () => {
  server = await startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: join(work, 'home'),
        requestTimeoutMs: String(TIMEOUT_MS),
        maxInflight: '2',
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
});
after(async () => {
  await server?.close();
});

describe('the PDF renderer under a rendering bomb', () => {
  test('a page still rendering at its request deadline does not hold up the next document', async () => {
    // Rendering one of its pages takes several times the request timeout.
    const bomb = await renderBomb(5_000_000, 3);
    const page = await pdfOf([['AFTER THE BOMB 42']]);
    const bombed = ocr(bomb);
    await sleep((TIMEOUT_MS * 2) / 3);
    const res = await ocr(page);
    const body = (await res.json()) as { pages?: { lines: { text: string }[] }[]; error?: { code: string } };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.match(body.pages![0]!.lines.map((l) => l.text).join(' '), /AFTER/);
    const refused = await bombed;
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'TIMEOUT');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^hotocr_pdf_renderer_stops_total\{reason="deadline"\} [1-9]/m);
    assert.match(
      metrics,
      /^hotocr_document_pages_total\{name="ppocr",version="ppocr\/[^"]+",kind="pdf"\} 1$/m,
    );
  });
});

describe('a searchable copy of a PDF of many objects', () => {
  test('is given up at the deadline, and its work stops with it', async () => {
    // 800 000 objects (10 MB): about 10 s of pdf-lib's parsing and writing here.
    const res = await fetch(`${server.url}/v1/ocr?pages=1&dpi=72`, {
      method: 'POST',
      body: manyObjects(800_000),
      headers: { 'content-type': 'application/pdf', accept: 'application/pdf' },
    });
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(res.status, 503);
    assert.equal(body.error.code, 'TIMEOUT');
    // Given up, the copy costs nothing more: this process (the server runs in it) idles. CPU
    // time, not wall time: other processes on the machine do not count (the old code spent
    // about half of the 2 s on the copy it had given up).
    const cpu = process.cpuUsage();
    await sleep(2000);
    const { user, system } = process.cpuUsage(cpu);
    assert.ok(
      (user + system) / 1000 < 500,
      `${((user + system) / 1000).toFixed(0)} ms of CPU in the 2 s after`,
    );
  });
});

describe('the PDF rendering thread', () => {
  test('calls waiting behind one stopped at its deadline are made again on a new thread', async () => {
    const page = await RemotePdf.open(await pdfOf([['WAITING']]));
    const bomb = await RemotePdf.open(await renderBomb(3_000_000), { deadline: performance.now() + 500 });
    const before = pdfRendererStats();
    const bombed = bomb.render(0, 1275, 1650);
    const waiting = page.render(0, 1275, 1650);
    // Stopped at its deadline: let run, the page would have been rendered.
    await assert.rejects(bombed, (e: unknown) => e instanceof HotocrError && e.code === 'TIMEOUT');
    const pixels = await waiting;
    assert.equal(pixels?.length, 1275 * 1650 * 3);
    assert.ok(
      pixels.some((v) => v < 128),
      'the text is drawn',
    );
    // The document lives on on the new thread.
    assert.equal((await page.render(0, 100, 130))?.length, 100 * 130 * 3);
    const after = pdfRendererStats();
    assert.equal(after.deadline, before.deadline + 1);
    assert.equal(after.started, before.started + 1);
    bomb.close();
    page.close();
  });

  test('a call whose deadline passes while it waits its turn is refused there; the thread is not stopped', async () => {
    const heavy = await RemotePdf.open(await renderBomb(1_000_000));
    const late = await RemotePdf.open(await pdfOf([['LATE']]), { deadline: performance.now() + 300 });
    const before = pdfRendererStats();
    const rendering = heavy.render(0, 1275, 1650);
    await assert.rejects(
      late.render(0, 100, 130),
      (e: unknown) => e instanceof HotocrError && e.code === 'TIMEOUT' && /waited/.test(e.message),
    );
    assert.equal((await rendering)?.length, 1275 * 1650 * 3, 'the page being rendered is done');
    const after = pdfRendererStats();
    assert.equal(after.deadline, before.deadline, 'no thread stopped');
    assert.equal(after.started, before.started);
    heavy.close();
    late.close();
  });

  test('a thread whose PDFium memory grew past the limit is retired once its documents are closed', async () => {
    const before = pdfRendererStats();
    // About 650 MB of PDFium memory to render.
    const heavy = await RemotePdf.open(await renderBomb(2_000_000));
    await heavy.render(0, 1275, 1650);
    heavy.close();
    await until(() => pdfRendererStats().retired === before.retired + 1, 'the heavy thread to retire');
    const next = await RemotePdf.open(await pdfOf([['NEXT']]));
    assert.equal((await next.render(0, 100, 130))?.length, 100 * 130 * 3);
    next.close();
    const after = pdfRendererStats();
    assert.equal(after.started, before.started + 1, 'the next document opened on a new thread');
    assert.equal(after.crashed, before.crashed);
  });

  test('no more than two threads live while heavy pages retire them', async () => {
    const before = pdfRendererStats();
    // A stays open on the first thread, so that it lives on once retired.
    const a = await RemotePdf.open(await pdfOf([['A']]));
    const first = await RemotePdf.open(await renderBomb(2_000_000));
    await first.render(0, 1275, 1650);
    first.close();
    await until(async () => {
      // Retired once the close is answered: the next document goes to a new thread.
      const probe = await RemotePdf.open(await pdfOf([['PROBE']]));
      probe.close();
      return pdfRendererStats().started === before.started + 1;
    }, 'a second thread');
    const second = await RemotePdf.open(await renderBomb(2_000_000));
    await second.render(0, 1275, 1650);
    second.close();
    // The second thread is past the limit too, but the first still lives: no third one.
    for (let i = 0; i < 5; i++) {
      const b = await RemotePdf.open(await pdfOf([['B']]));
      assert.equal((await b.render(0, 100, 130))?.length, 100 * 130 * 3);
      b.close();
    }
    assert.equal(pdfRendererStats().started, before.started + 1);
    a.close();
    await until(() => pdfRendererStats().retired === before.retired + 2, 'both to retire');
  });

  test('PDFium running out of its memory fails the page, naming it, and the next document reads', async () => {
    // A thread running already, so that the one started after the trap is counted alone.
    (await RemotePdf.open(await pdfOf([['WARM']]))).close();
    const before = pdfRendererStats();
    // PDFium's WebAssembly memory stops at 2 GiB; ten million paths need more.
    const doc = await openDocument(await renderBomb(10_000_000));
    try {
      await assert.rejects(
        doc.render(1),
        (e: unknown) =>
          e instanceof HotocrError &&
          e.code === 'PAGE_RENDER_FAILED' &&
          /page 1/.test(e.message) &&
          (e.details as { page?: number }).page === 1,
      );
    } finally {
      doc.close();
    }
    const next = await openDocument(await pdfOf([['NEXT']]));
    assert.equal((await next.render(1)).width, 1275);
    next.close();
    const after = pdfRendererStats();
    assert.equal(after.crashed, before.crashed + 1);
    assert.equal(after.started, before.started + 1);
  });
});
