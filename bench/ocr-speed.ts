/**
 * hotocr against @gutenye/ocr-node (same PP-OCRv4 weights) and the tesseract CLI on the same
 * generated pages, in one run, and hotocr's second built-in backend (onnxruntime-web's
 * WebAssembly, for machines without the native binding) against its native one: median ms per page, ratios, each one's character error rate
 * (spaces not compared), and hotocr's pipeline overhead (end-to-end / inside onnxruntime run()).
 * Each engine runs in its own process, so one's idle thread pools cannot slow another; the
 * rounds alternate between engines so machine noise falls on each alike.
 *
 *   npm run build && node dist/bench/ocr-speed.js [--pages 40] [--rounds 2] [--no-tesseract] [--no-wasm]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gutenyeEngine, hotocrEngine, tesseractEngine } from './lib/engines.js';
import { benchOptions } from './lib/options.js';
import { makePages } from './lib/pages.js';
import { scorePage } from './lib/score.js';
import { machine, median } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/ocr-speed.js',
  'hotocr against @gutenye/ocr-node and tesseract on the same generated pages, and its WebAssembly backend against its native one.',
  {
    pages: { type: 'number', default: 40, min: 1, help: 'generated pages (half clean, half hard)' },
    rounds: { type: 'number', default: 2, min: 1, help: 'rounds, engines alternated' },
    'no-tesseract': { type: 'flag', help: 'leave tesseract out' },
    'no-wasm': { type: 'flag', help: 'leave the WebAssembly backend out' },
    child: { type: 'string', help: 'internal: run one engine and print its results as JSON' },
  },
);
const pageCount = options.pages;

interface PageResult {
  kind: 'clean' | 'hard';
  ms: number;
  inferenceMs?: number;
  errors: number;
  chars: number;
  exact: number;
  lines: number;
}

/** Child mode: one engine over every page; prints one JSON array. */
async function child(engineName: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-ocr-'));
  try {
    const pages = await makePages(pageCount);
    const engine =
      engineName === 'hotocr'
        ? await hotocrEngine(join(dir, 'home'))
        : engineName === 'hotocr-wasm'
          ? await hotocrEngine(join(dir, 'home'), 'onnxruntime-wasm')
          : engineName === 'gutenye'
            ? await gutenyeEngine()
            : await tesseractEngine();
    await engine.read(pages[0]!, dir); // warm-up: first-run graph optimisation is not a per-page cost
    const results: PageResult[] = [];
    for (const page of pages) {
      const t = performance.now();
      const r = await engine.read(page, dir);
      const ms = performance.now() - t;
      const s = scorePage(page.lines, r.lines);
      results.push({
        kind: page.kind,
        ms,
        ...(r.inferenceMs ? { inferenceMs: r.inferenceMs } : {}),
        ...s,
        lines: page.lines.length,
      });
    }
    await engine.close();
    process.stdout.write(JSON.stringify(results));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const engines = [
    ['hotocr', 'hotocr'],
    ...(options['no-wasm'] ? [] : [['hotocr-wasm', 'hotocr (onnxruntime-wasm)']]),
    ['gutenye', '@gutenye/ocr-node'],
    ...(options['no-tesseract'] ? [] : [['tesseract', 'tesseract 5 (chi_sim+eng)']]),
  ] as const;
  const rounds = options.rounds;
  const all = new Map<string, PageResult[]>(engines.map(([id]) => [id, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [id] of r % 2 === 0 ? engines : [...engines].reverse()) {
      const out = execFileSync(
        process.execPath,
        [process.argv[1]!, '--child', id, '--pages', String(pageCount)],
        {
          maxBuffer: 1 << 26,
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      all.get(id)!.push(...(JSON.parse(out.toString()) as PageResult[]));
    }
  }
  const base = median(all.get('hotocr')!.map((p) => p.ms));
  console.log(
    `bench/ocr-speed: ${pageCount} generated pages (half clean, half hard) x ${rounds} rounds, medians; ${await machine()}`,
  );
  console.log(
    'engine                        ms/page  vs hotocr   CER clean   CER hard  exact lines clean/hard',
  );
  for (const [id, label] of engines) {
    const results = all.get(id)!;
    const m = median(results.map((p) => p.ms));
    const part = (kind: 'clean' | 'hard') => {
      const rs = results.filter((p) => p.kind === kind);
      const errors = rs.reduce((a, p) => a + p.errors, 0);
      const chars = rs.reduce((a, p) => a + p.chars, 0);
      const exact = rs.reduce((a, p) => a + p.exact, 0);
      const lines = rs.reduce((a, p) => a + p.lines, 0);
      return {
        cer: `${((100 * errors) / chars).toFixed(2)}%`,
        exact: `${((100 * exact) / lines).toFixed(0)}%`,
      };
    };
    const clean = part('clean');
    const hard = part('hard');
    console.log(
      `${label.padEnd(28)} ${m.toFixed(0).padStart(8)} ${`${(m / base).toFixed(2)}x`.padStart(10)} ${clean.cer.padStart(11)} ${hard.cer.padStart(10)}  ${clean.exact}/${hard.exact}`,
    );
  }
  const overhead = all.get('hotocr')!.map((p) => p.ms / (p.inferenceMs ?? p.ms));
  console.log(
    `hotocr pipeline overhead (end-to-end incl. decode / inside run()): median ${median(overhead).toFixed(3)}`,
  );
}

if (options.child !== undefined) await child(options.child);
else await main();
