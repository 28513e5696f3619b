import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Loaders } from '../../src/loaders/index.js';
import { decodeImage } from '../../src/ocr/index.js';
import { verifiedBundled } from '../../test/helpers/bundled.js';
import type { Page } from './pages.js';

const run = promisify(execFile);

/** An OCR implementation under test: lines of text for a page, and (for hotocr) time inside onnxruntime. */
export interface Engine {
  readonly name: string;
  read(page: Page, dir: string): Promise<{ lines: string[]; inferenceMs?: number }>;
  close(): Promise<void>;
}

/** hotocr on the bundled package, with the native runtime or (`onnxruntime-wasm`) onnxruntime-web's WebAssembly backend. */
export async function hotocrEngine(home: string, runtime = 'onnxruntime-node'): Promise<Engine> {
  const model = await Loaders.builtin({ defaultRuntime: runtime }).load(await verifiedBundled(home));
  return {
    name: `hotocr (${runtime})`,
    async read(page) {
      const r = await model.read(await decodeImage(page.png));
      return { lines: r.lines.map((l) => l.text), inferenceMs: r.timings.inference };
    },
    close: () => model.release(),
  };
}

/** @gutenye/ocr-node: the same PP-OCRv4 weights behind a different pipeline. */
export async function gutenyeEngine(): Promise<Engine> {
  const { default: Ocr } = (await import('@gutenye/ocr-node')) as unknown as {
    default: { create(): Promise<{ detect(path: string): Promise<{ text: string }[]> }> };
  };
  const ocr = await Ocr.create();
  return {
    name: '@gutenye/ocr-node',
    async read(page, dir) {
      const path = join(dir, `${page.id}.png`);
      await writeFile(path, page.png);
      const lines = await ocr.detect(path);
      return { lines: lines.map((l) => l.text) };
    },
    close: async () => {},
  };
}

/** The tesseract CLI (Debian tesseract-ocr with chi_sim), one process per page as a user runs it. */
export async function tesseractEngine(): Promise<Engine> {
  return {
    name: 'tesseract 5 (chi_sim+eng)',
    async read(page, dir) {
      const path = join(dir, `${page.id}.png`);
      await writeFile(path, page.png);
      const { stdout } = await run('tesseract', [path, 'stdout', '-l', 'chi_sim+eng', '--psm', '3'], {
        maxBuffer: 1 << 24,
      });
      return { lines: stdout.split('\n').filter((l) => l.trim().length > 0) };
    },
    close: async () => {},
  };
}
