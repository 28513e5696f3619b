/**
 * hotocr against @gutenye/ocr-node (same PP-OCRv4 weights), the onnxruntime floor (the
 * graphs alone at PaddleOCR's reference sizes, only their run() timed) and, optionally, the
 * tesseract CLI and hotocr's WebAssembly backend, on the same generated pages in one run:
 * median ms per page for each page set, ratios to the peer and to the floor, and each one's
 * character error rate without and with spaces (bench/lib/score.ts). With --steps, hotocr
 * also runs on the bundled package repacked with each of its steps turned back to PaddleOCR's
 * reference, and with all of them: what each step costs or saves, in time and in errors.
 * Each engine runs in its own process, so one's idle thread pools cannot slow another; all
 * run at once, reading each page in turn (the order turning with every page), so machine
 * noise falls on each alike.
 *
 *   npm run build && node dist/bench/ocr-speed.js [--pages 40] [--rounds 2] [--steps] [--tesseract] [--wasm]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type Engine,
  floorEngine,
  gutenyeEngine,
  hotocrEngine,
  REFERENCE,
  STEPS,
  tesseractEngine,
} from './lib/engines.js';
import { benchOptions } from './lib/options.js';
import { makePages, makeWordPages, type Page } from './lib/pages.js';
import { scorePage } from './lib/score.js';
import { machine, median } from './lib/stats.js';

const options = benchOptions(
  'node dist/bench/ocr-speed.js',
  'hotocr against @gutenye/ocr-node and the onnxruntime floor on the same generated pages: speed and errors.',
  {
    pages: { type: 'number', default: 40, min: 2, help: 'pages of each set (half clean, half hard)' },
    rounds: { type: 'number', default: 2, min: 1, help: 'rounds, engines alternated' },
    steps: { type: 'flag', help: "also hotocr with each of the bundled package's steps turned off" },
    tesseract: { type: 'flag', help: 'also the tesseract CLI' },
    wasm: { type: 'flag', help: "also hotocr on onnxruntime-web's WebAssembly backend" },
    child: { type: 'string', help: 'internal: run one engine and print its results as JSON' },
  },
);
const pageCount = options.pages;

interface PageResult {
  set: Page['set'];
  kind: Page['kind'];
  ms: number;
  inferenceMs?: number;
  errors: number;
  chars: number;
  spacedErrors: number;
  spacedChars: number;
}

async function engineFor(id: string, dir: string): Promise<Engine> {
  const home = join(dir, 'home');
  if (id === 'hotocr') return hotocrEngine(home);
  if (id === 'hotocr-wasm') return hotocrEngine(home, 'onnxruntime-wasm');
  if (id === 'reference') return hotocrEngine(home, 'onnxruntime-node', REFERENCE);
  if (id.startsWith('without ')) return hotocrEngine(home, 'onnxruntime-node', STEPS[id.slice(8)]);
  if (id === 'gutenye') return gutenyeEngine();
  if (id === 'floor') return floorEngine();
  return tesseractEngine();
}

/**
 * Child mode: one engine, reading the page whose index arrives on each line of stdin and
 * answering each with one line of JSON; "ready" once warmed up.
 */
async function child(id: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-ocr-'));
  try {
    const pages = [...(await makePages(pageCount)), ...(await makeWordPages(pageCount))];
    const engine = await engineFor(id, dir);
    // Warm-up: first-run graph optimisation is not a per-page cost.
    for (const page of pages.slice(0, 2)) await engine.read(page, dir);
    process.stdout.write('ready\n');
    for await (const line of createInterface({ input: process.stdin })) {
      const page = pages[Number(line)]!;
      const t = performance.now();
      const r = await engine.read(page, dir);
      const ms = r.ms ?? performance.now() - t;
      const { exact: _exact, exactSpaced: _exactSpaced, ...s } = scorePage(page.lines, r.lines);
      const result: PageResult = {
        set: page.set,
        kind: page.kind,
        ms,
        ...(r.inferenceMs ? { inferenceMs: r.inferenceMs } : {}),
        ...s,
      };
      process.stdout.write(`${JSON.stringify(result)}\n`);
    }
    await engine.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An engine's own process, asked for one page at a time. */
async function startChild(id: string): Promise<{ read(page: number): Promise<PageResult>; stop(): void }> {
  const proc = spawn(process.execPath, [process.argv[1]!, '--child', id, '--pages', String(pageCount)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`the ${id} engine stopped`);
    return value as string;
  };
  if ((await next()) !== 'ready') throw new Error(`the ${id} engine did not start`);
  return {
    async read(page) {
      proc.stdin.write(`${page}\n`);
      return JSON.parse(await next()) as PageResult;
    },
    stop: () => proc.stdin.end(),
  };
}

async function main(): Promise<void> {
  const engines: [string, string][] = [
    ['hotocr', 'hotocr'],
    ['gutenye', '@gutenye/ocr-node'],
    ['floor', 'onnxruntime floor'],
    ...(options.steps
      ? [
          ['reference', 'hotocr, reference pipeline'] as [string, string],
          ...Object.keys(STEPS).map((s): [string, string] => [`without ${s}`, `hotocr without ${s}`]),
        ]
      : []),
    ...(options.wasm ? [['hotocr-wasm', 'hotocr (onnxruntime-wasm)'] as [string, string]] : []),
    ...(options.tesseract ? [['tesseract', 'tesseract 5 (chi_sim+eng)'] as [string, string]] : []),
  ];
  const all = new Map<string, PageResult[]>(engines.map(([id]) => [id, []]));
  // Every engine in its own process, all started, each page read by each in turn (the order
  // turning with every page): a noisy neighbour slows every engine alike.
  const children = new Map<string, Awaited<ReturnType<typeof startChild>>>();
  for (const [id] of engines) children.set(id, await startChild(id));
  const pageTotal = 2 * pageCount;
  for (let r = 0; r < options.rounds; r++) {
    for (let page = 0; page < pageTotal; page++) {
      const turn = (r * pageTotal + page) % engines.length;
      const order = [...engines.slice(turn), ...engines.slice(0, turn)];
      for (const [id] of page % 2 === 0 ? order : order.reverse()) {
        all.get(id)!.push(await children.get(id)!.read(page));
      }
    }
  }
  for (const c of children.values()) c.stop();
  console.log(
    `bench/ocr-speed: ${pageCount} sentence pages and ${pageCount} word pages (half clean, half hard) x ${options.rounds} rounds, medians; ${await machine()}`,
  );
  const pct = (e: number, n: number) => `${((100 * e) / n).toFixed(2)}%`;
  for (const set of ['sentences', 'words'] as const) {
    const ms = (id: string) =>
      median(
        all
          .get(id)!
          .filter((p) => p.set === set)
          .map((p) => p.ms),
      );
    const peer = ms('gutenye');
    const floor = ms('floor');
    console.log(`\n${set} pages`);
    console.log(
      `${'engine'.padEnd(44)}${'ms/page'.padStart(8)}${'vs peer'.padStart(9)}${'vs floor'.padStart(10)}  CER clean: no spaces / spaces   hard: no spaces / spaces`,
    );
    for (const [id, label] of engines) {
      const results = all.get(id)!.filter((p) => p.set === set);
      const part = (kind: 'clean' | 'hard') => {
        const rs = results.filter((p) => p.kind === kind);
        const sum = (f: (p: PageResult) => number) => rs.reduce((a, p) => a + f(p), 0);
        return `${pct(
          sum((p) => p.errors),
          sum((p) => p.chars),
        ).padStart(7)} / ${pct(
          sum((p) => p.spacedErrors),
          sum((p) => p.spacedChars),
        ).padStart(7)}`;
      };
      const m = ms(id);
      // The peer's time over this engine's: above 1, this engine reads more pages a second.
      console.log(
        `${label.padEnd(44)}${m.toFixed(0).padStart(8)}${`${(peer / m).toFixed(2)}x`.padStart(9)}${`${(floor / m).toFixed(2)}x`.padStart(10)}  ${part('clean').padStart(28)}   ${part('hard')}`,
      );
    }
  }
  const overhead = all.get('hotocr')!.map((p) => p.ms / (p.inferenceMs ?? p.ms));
  console.log(
    `\nvs peer, vs floor: that engine's ms/page over this one's (above 1: faster). hotocr's pipeline overhead (end to end incl. decode / inside run()): median ${median(overhead).toFixed(3)}`,
  );
}

if (options.child !== undefined) await child(options.child);
else await main();
