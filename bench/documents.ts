/**
 * What reading a document costs against reading its pages as single images: one server
 * (`hotocr serve`, its own process), a 20-page PDF of printed text (pdf-lib, Helvetica) read
 * as one request, and the same pages rendered once at the same resolution and sent as PNGs,
 * one request after another and two at a time; a 2-page document, to see whether memory
 * grows with the page count; and the 20 pages answered as a searchable copy. Each way on a
 * fresh server, warmed up first (an image and a page of a PDF read); per way, pages per
 * second and the growth of the server's resident set from
 * the warmed-up idle server to its peak while reading (sampled every 20 ms), medians over
 * --rounds. Also PDFium's rendering time alone, per page, and the longest the main thread
 * stalls while pages render: PDFium called on the main thread itself, against the rendering
 * thread the server uses (at the bench's resolution and at 300 dpi); and how long a plain page
 * waits behind a rendering bomb, with the renderer's watchdog and without (see bombEffect).
 *
 *   npm run build && node dist/bench/documents.js [--rounds 3] [--pages 20] [--dpi 150]
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';
import { openDocument } from '../src/documents/index.js';
import { RemotePdf } from '../src/documents/pdf-thread.js';
import { PdfiumDocument } from '../src/documents/pdfium.js';
import { renderBomb } from '../test/helpers/pdfs.js';
import { benchOptions } from './lib/options.js';
import { startServer } from './lib/server.js';
import { machine, median } from './lib/stats.js';

const { rounds, pages, dpi } = benchOptions(
  'node dist/bench/documents.js',
  'Pages per second and peak memory: a PDF read as one document against its pages sent as single images.',
  {
    rounds: { type: 'number', default: 3, min: 1, help: 'rounds, each way once per round' },
    pages: { type: 'number', default: 20, min: 2, help: 'pages of the document' },
    dpi: { type: 'number', default: 150, min: 36, help: 'resolution the pages are rendered at' },
  },
);

const LINES = [
  'Invoice number 2026-0042 is due on Friday',
  'The quick brown fox jumps over the lazy dog',
  'Please keep this receipt for your records',
  'Total amount: 1,249.99 USD',
  'Meeting moved to Room 301 at 3 PM',
  'Order shipped on 25 November 2026',
  'Serial No. A7X-99812-B',
  'Tel: +86 10 6253 1234',
];

/** A PDF of Letter pages, each with a heading and ten lines of 14 pt text, as a letter has. */
async function documentOf(count: number): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let p = 0; p < count; p++) {
    const page = doc.addPage([612, 792]);
    page.drawText(`Page ${p + 1} of ${count}`, { x: 72, y: 720, size: 20, font });
    for (let i = 0; i < 10; i++)
      page.drawText(LINES[(p + i) % LINES.length]!, { x: 72, y: 670 - i * 28, size: 14, font });
  }
  return Buffer.from(await doc.save());
}

/**
 * The longest gap between ticks of a 1 ms timer while `run` goes on: how long the main
 * thread could answer nothing.
 */
async function longestStall(run: () => Promise<void>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await run();
  longest = Math.max(longest, performance.now() - last);
  clearInterval(ticker);
  return longest;
}

/** Pages rendered with PDFium on this thread, then through the rendering thread, at the bench's dpi and 300. */
async function mainThreadStalls(pdf: Buffer, count: number) {
  const out: { at: number; count: number; inProcess: number; thread: number }[] = [];
  for (const at of [...new Set([dpi, 300])]) {
    const size = { width: Math.floor((612 * at) / 72), height: Math.floor((792 * at) / 72) };
    const local = await PdfiumDocument.open(pdf);
    const remote = await RemotePdf.open(pdf);
    // Each warmed once, then interleaved, medians of three.
    local.render(0, size.width, size.height);
    await remote.render(0, size.width, size.height);
    const inProcess: number[] = [];
    const thread: number[] = [];
    for (let r = 0; r < 3; r++) {
      inProcess.push(
        await longestStall(async () => {
          for (let i = 0; i < count; i++) {
            local.render(i, size.width, size.height);
            // A turn of the event loop between pages, as the server gives one.
            await new Promise((resolve) => setImmediate(resolve));
          }
        }),
      );
      thread.push(
        await longestStall(async () => {
          for (let i = 0; i < count; i++) await remote.render(i, size.width, size.height);
        }),
      );
    }
    local.close();
    remote.close();
    out.push({ at, count, inProcess: median(inProcess), thread: median(thread) });
  }
  return out;
}

/**
 * A rendering bomb against the renderer's watchdog: a plain page asked for 200 ms after a bomb
 * page (5 million rectangles, seconds to render) started, how long until it is rendered when
 * the bomb's request has a 1 s deadline (the thread stopped at it, the plain page rendered on a
 * new one) and when it has none (the plain page waits for the bomb). And what a stop costs the
 * documents behind it: a new thread's first open, against an open on a running thread.
 */
async function bombEffect(plain: Buffer, bomb: Buffer) {
  const waits: { stopped: number[]; waited: number[] } = { stopped: [], waited: [] };
  const opens: { cold: number[]; warm: number[] } = { cold: [], warm: [] };
  const page = await RemotePdf.open(plain);
  await page.render(0, 1275, 1650);
  for (let r = 0; r < 3; r++)
    for (const deadline of [1000, undefined]) {
      const heavy = await RemotePdf.open(bomb, deadline ? { deadline: performance.now() + deadline } : {});
      const rendering = heavy.render(0, 1275, 1650).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const t = performance.now();
      await page.render(0, 1275, 1650);
      (deadline ? waits.stopped : waits.waited).push(performance.now() - t);
      await rendering;
      heavy.close();
    }
  page.close();
  for (let r = 0; r < 3; r++) {
    // The bomb alone, its thread stopped at its deadline: the next open starts a thread.
    const heavy = await RemotePdf.open(bomb, { deadline: performance.now() + 100 });
    await heavy.render(0, 1275, 1650).catch(() => undefined);
    heavy.close();
    const tc = performance.now();
    const cold = await RemotePdf.open(plain);
    opens.cold.push(performance.now() - tc);
    const tw = performance.now();
    const warm = await RemotePdf.open(plain);
    opens.warm.push(performance.now() - tw);
    cold.close();
    warm.close();
  }
  return {
    stopped: median(waits.stopped),
    waited: median(waits.waited),
    cold: median(opens.cold),
    warm: median(opens.warm),
  };
}

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024;
}

/** Runs `work` while sampling the process's resident set; its time and the peak seen. */
async function measured(
  pid: number,
  work: () => Promise<void>,
): Promise<{ ms: number; before: number; peak: number }> {
  const before = await rss(pid);
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rss(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const t = performance.now();
  await work();
  const ms = performance.now() - t;
  sampling = false;
  await sampler;
  return { ms, before, peak: Math.max(peak, await rss(pid)) };
}

async function post(url: string, body: Buffer, type: string, query = '', accept?: string): Promise<unknown> {
  const res = await fetch(`${url}/v1/ocr${query}`, {
    method: 'POST',
    body,
    headers: { 'content-type': type, ...(accept ? { accept } : {}) },
  });
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  return accept === 'application/pdf' ? Buffer.from(await res.arrayBuffer()) : res.json();
}

const dir = await mkdtemp(join(tmpdir(), 'hotocr-bench-documents-'));
try {
  const pdf = await documentOf(pages);
  // The same pixels the server reads: rendered once here, at the same resolution.
  const opened = await openDocument(pdf, { dpi, maxPages: pages });
  const pngs: Buffer[] = [];
  const renders: number[] = [];
  for (const page of opened.pages) {
    const t = performance.now();
    const image = await opened.render(page);
    renders.push(performance.now() - t);
    pngs.push(
      await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .png({ compressionLevel: 1 })
        .toBuffer(),
    );
  }
  opened.close();
  const stalls = await mainThreadStalls(pdf, Math.min(pages, 5));
  const bombed = await bombEffect(await documentOf(1), await renderBomb(5_000_000));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'bench-admin-token-0123456789abcdef\n');
  const short = await documentOf(2);
  const ways: Record<string, { pages: number; run: (url: string) => Promise<void> }> = {
    [`document (${pages} pages, one request)`]: {
      pages,
      run: async (url) => {
        const body = (await post(url, pdf, 'application/pdf', `?dpi=${dpi}`)) as { pages: unknown[] };
        if (body.pages.length !== pages) throw new Error(`read ${body.pages.length} pages`);
      },
    },
    'single images, one at a time': {
      pages,
      run: async (url) => {
        for (const png of pngs) await post(url, png, 'image/png');
      },
    },
    'single images, two at a time': {
      pages,
      run: async (url) => {
        let next = 0;
        const lane = async () => {
          while (next < pngs.length) await post(url, pngs[next++]!, 'image/png');
        };
        await Promise.all([lane(), lane()]);
      },
    },
    'document (2 pages, one request)': {
      pages: 2,
      run: async (url) => {
        await post(url, short, 'application/pdf', `?dpi=${dpi}`);
      },
    },
    [`searchable copy (${pages} pages, one request)`]: {
      pages,
      run: async (url) => {
        const copy = (await post(url, pdf, 'application/pdf', `?dpi=${dpi}`, 'application/pdf')) as Buffer;
        if (copy.subarray(0, 5).toString() !== '%PDF-') throw new Error('the answer is not a PDF');
      },
    },
  };
  const results = new Map(
    Object.keys(ways).map((k) => [k, [] as { ms: number; before: number; peak: number }[]]),
  );
  for (let r = 0; r < rounds; r++)
    for (const [name, way] of Object.entries(ways)) {
      const server = await startServer({
        home: join(dir, `home-${r}-${Object.keys(ways).indexOf(name)}`),
        tokenFile,
        args: ['--request-timeout-ms', '600000', '--max-pages', String(pages)],
      });
      try {
        // Warm: a fresh server's first pages, and PDFium's first load, are not the figure.
        await post(server.url, pngs[0]!, 'image/png');
        await post(server.url, short, 'application/pdf', '?pages=1');
        results.get(name)!.push(await measured(server.child.pid!, () => way.run(server.url)));
      } finally {
        await server.stop();
      }
    }
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  console.log(`bench/documents: ${pages} Letter pages at ${dpi} dpi, ${rounds} rounds; ${await machine()}`);
  console.log('| way | pages/s | peak resident set | grown from idle to peak |');
  console.log('| --- | ---: | ---: | ---: |');
  const rate = (name: string) => ways[name]!.pages / (median(results.get(name)!.map((m) => m.ms)) / 1000);
  for (const [name, runs] of results)
    console.log(
      `| ${name} | ${rate(name).toFixed(2)} | ${mib(median(runs.map((m) => m.peak)))} | ${mib(median(runs.map((m) => m.peak - m.before)))} |`,
    );
  console.log(
    `PDFium rendering alone, in this process: ${median(renders).toFixed(1)} ms a page (median of ${renders.length})`,
  );
  for (const { at, count, inProcess, thread } of stalls)
    console.log(
      `longest main-thread stall while ${count} pages render at ${at} dpi: PDFium on the main thread ${inProcess.toFixed(1)} ms, on the rendering thread ${thread.toFixed(1)} ms (${(inProcess / thread).toFixed(1)}x)`,
    );
  console.log(
    `a plain page asked for while a rendering bomb renders: ${bombed.stopped.toFixed(0)} ms with the bomb's request deadline at 1 s (its thread stopped), ${bombed.waited.toFixed(0)} ms without a deadline (${(bombed.waited / bombed.stopped).toFixed(1)}x); a new rendering thread's first open ${bombed.cold.toFixed(0)} ms, against ${bombed.warm.toFixed(1)} ms on a running one`,
  );
  const [doc, one, two, , copy] = Object.keys(ways) as [string, string, string, string, string];
  console.log(
    `document / one at a time: ${(rate(doc) / rate(one)).toFixed(2)}x; document / two at a time: ${(rate(doc) / rate(two)).toFixed(2)}x; searchable copy / JSON: ${(rate(copy) / rate(doc)).toFixed(2)}x the pages/s`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
