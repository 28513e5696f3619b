/**
 * hotocr's accuracy on generated pages with known text, and on the images as users send
 * them that the tests read (test/helpers/user-images.ts). Pages: the sentence set (common
 * Chinese, English, digits, mixed; 14-48 px) and the word set (random words, table rows,
 * random characters; 12-60 px), each half clean, half hard (blurred, rotated up to 3 degrees,
 * JPEG-compressed, noisy, tinted). Character error rate without and with spaces
 * (bench/lib/score.ts) and exact lines; for each user image, whether it reads right.
 * `--reference` reads with every step of the bundled package turned back to PaddleOCR's
 * reference pipeline, for comparison.
 *
 *   npm run build && node dist/bench/ocr-accuracy.js [--pages 60] [--reference]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { userImages } from '../test/helpers/user-images.js';
import { hotocrEngine, REFERENCE } from './lib/engines.js';
import { benchOptions } from './lib/options.js';
import { makePages, makeWordPages, type Page } from './lib/pages.js';
import { scorePage, spaced } from './lib/score.js';
import { machine } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/ocr-accuracy.js',
  "hotocr's accuracy on generated pages with known text and on images as users send them.",
  {
    pages: { type: 'number', default: 60, min: 2, help: 'pages of each set' },
    reference: {
      type: 'flag',
      help: "read with PaddleOCR's reference pipeline instead of the bundled steps",
    },
  },
);
const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-acc-'));
try {
  const engine = await hotocrEngine(
    join(dir, 'home'),
    'onnxruntime-node',
    options.reference ? REFERENCE : undefined,
  );
  console.log(
    `bench/ocr-accuracy: ${options.pages} pages of each set${options.reference ? ', reference pipeline' : ''}; ${await machine()}`,
  );
  console.log('pages            lines  CER (no spaces)  CER (spaces)  exact lines (no spaces / spaces)');
  for (const pages of [await makePages(options.pages), await makeWordPages(options.pages)]) {
    const acc = new Map<
      string,
      { lines: number; e: number; n: number; se: number; sn: number; x: number; xs: number }
    >();
    for (const page of pages) {
      const r = await engine.read(page, dir);
      const s = scorePage(page.lines, r.lines);
      const key = `${page.set} ${page.kind}`;
      const a = acc.get(key) ?? { lines: 0, e: 0, n: 0, se: 0, sn: 0, x: 0, xs: 0 };
      acc.set(key, {
        lines: a.lines + page.lines.length,
        e: a.e + s.errors,
        n: a.n + s.chars,
        se: a.se + s.spacedErrors,
        sn: a.sn + s.spacedChars,
        x: a.x + s.exact,
        xs: a.xs + s.exactSpaced,
      });
    }
    for (const [key, a] of acc) {
      const pct = (x: number, n: number, d = 2) => `${((100 * x) / n).toFixed(d)}%`;
      console.log(
        `${key.padEnd(16)} ${String(a.lines).padStart(5)} ${pct(a.e, a.n).padStart(16)} ${pct(a.se, a.sn).padStart(13)}  ${pct(a.x, a.lines, 1)} / ${pct(a.xs, a.lines, 1)}`,
      );
    }
  }
  console.log('\nimages as users send them (a line is read when its text, spaces compared, is read)');
  for (const image of await userImages()) {
    const page: Page = { id: 'user', set: 'words', kind: 'clean', lines: [...image.lines], png: image.bytes };
    const r = await engine.read(page, dir);
    const read = image.lines.filter((l) => r.lines.some((got) => spaced(got) === spaced(l))).length;
    console.log(
      `${image.name.padEnd(48)} ${`${read}/${image.lines.length}`.padStart(6)}  ${JSON.stringify(r.lines).slice(0, 90)}`,
    );
  }
  await engine.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
