/**
 * hotocr's accuracy on generated pages with known text (common Chinese, English, digits,
 * mixed; 14-48 px; DejaVu and WenQuanYi fonts; hard pages blurred, rotated up to 3 degrees,
 * JPEG-compressed, noisy, on tinted backgrounds): character error rate (edit distance over
 * code points) and exact-line accuracy, split clean/hard. CER is given without spaces (the
 * PP-OCRv4 Chinese recogniser often drops the space between Latin words) and with them.
 *
 *   npm run build && node dist/bench/ocr-accuracy.js [--pages 60]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { characterErrorRate } from '../test/helpers/images.js';
import { hotocrEngine } from './lib/engines.js';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { scorePage } from './lib/score.js';
import { machine } from './lib/stats.js';

const { pages: pageCount } = benchOptions(
  'node dist/bench/ocr-accuracy.js',
  "hotocr's accuracy on generated pages with known text: character error rate and exact lines.",
  { pages: { type: 'number', default: 60, min: 1, help: 'generated pages' } },
);
const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-acc-'));
try {
  const pages = await makePages(pageCount);
  const engine = await hotocrEngine(join(dir, 'home'));
  const acc = {
    clean: { errors: 0, chars: 0, exact: 0, lines: 0, spacedErrors: 0, spacedChars: 0 },
    hard: { errors: 0, chars: 0, exact: 0, lines: 0, spacedErrors: 0, spacedChars: 0 },
  };
  for (const page of pages) {
    const r = await engine.read(page, dir);
    const s = scorePage(page.lines, r.lines);
    const a = acc[page.kind];
    a.errors += s.errors;
    a.chars += s.chars;
    a.exact += s.exact;
    a.lines += page.lines.length;
    const want = page.lines.join('\n');
    a.spacedErrors += characterErrorRate(want, r.lines.join('\n')) * [...want].length;
    a.spacedChars += [...want].length;
  }
  await engine.close();
  console.log(`bench/ocr-accuracy: ${pageCount} generated pages; ${await machine()}`);
  console.log('pages  lines  CER (no spaces)  CER (with spaces)  exact lines');
  for (const kind of ['clean', 'hard'] as const) {
    const a = acc[kind];
    console.log(
      `${kind.padEnd(6)} ${String(a.lines).padStart(5)} ${`${((100 * a.errors) / a.chars).toFixed(2)}%`.padStart(16)} ${`${((100 * a.spacedErrors) / a.spacedChars).toFixed(2)}%`.padStart(18)} ${`${((100 * a.exact) / a.lines).toFixed(1)}%`.padStart(12)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
