import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { readEnvironment } from '../config.js';
import {
  bodyKind,
  checkRewritable,
  DEFAULT_DPI,
  DEFAULT_MAX_PAGE_PIXELS,
  DEFAULT_MAX_PAGES,
  imagePageCount,
  MAX_DPI,
  MIN_DPI,
  type OpenDocument,
  openDocument,
  type PageText,
  parsePageSelection,
  readDocument,
  searchablePdf,
} from '../documents/index.js';
import { HotocrError, messageOf } from '../errors.js';
import { loadOcrModel } from '../loaders/index.js';
import { decodeImage, type OcrLine, type OcrResult, type RgbImage } from '../ocr/index.js';
import { ensureBundledPackage } from '../pack/index.js';
import { TrustStore, verifyPackage } from '../verify/index.js';
import { EXIT } from './output.js';

const round = (n: number) => Math.round(n * 10) / 10;

interface OcrOptions {
  model?: string;
  trust?: string;
  json: boolean;
  pages?: string;
  dpi: string;
  maxPages: string;
  searchablePdf?: string;
  passwordFile?: string;
}

function integerIn(min: number, max: number, name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new HotocrError(
        'USAGE',
        `${name} takes a whole number from ${min} to ${max}, not ${JSON.stringify(text)}.`,
      );
    return n;
  };
}

export function ocrCommand(): Command {
  return new Command('ocr')
    .description(
      'read the text of images and documents (PDF, multi-page TIFF) without a server (default model: the bundled PP-OCRv4)',
    )
    .argument('<file...>', 'PNG, JPEG, WebP or TIFF images, or PDF documents')
    .option('--model <package>', 'a signed model package (.zip) instead of the bundled model')
    .option('--trust <file_or_dir>', 'trusted keys or roots for --model (required with it)')
    .option(
      '--json',
      'one JSON object per line: {file, model, lines, timings} per image, {file, page, width, height, model, lines, timings} per page of a document',
      false,
    )
    .option('--pages <list>', 'pages of a document to read, numbered from 1: 1-3,7 or 5- (default all)')
    .addOption(
      new Option('--dpi <dpi>', `resolution PDF pages are rendered at (${MIN_DPI} to ${MAX_DPI})`).default(
        String(DEFAULT_DPI),
      ),
    )
    .addOption(
      new Option('--max-pages <n>', 'most pages read per document').default(String(DEFAULT_MAX_PAGES)),
    )
    .option(
      '--password-file <file>',
      'a file holding the password of PDFs that need one (one line; kept out of the process list)',
    )
    .option(
      '--searchable-pdf <out>',
      'write the document (one file) as a PDF with an invisible text layer where the lines were read',
    )
    .action(async (files: string[], opts: OcrOptions) => {
      const dpi = integerIn(MIN_DPI, MAX_DPI, '--dpi')(opts.dpi);
      const maxPages = integerIn(1, 10_000, '--max-pages')(opts.maxPages);
      const pages = opts.pages === undefined ? undefined : parsePageSelection(opts.pages);
      const password = opts.passwordFile === undefined ? undefined : await readPassword(opts.passwordFile);
      if (opts.searchablePdf && files.length !== 1)
        throw new HotocrError('USAGE', '--searchable-pdf writes one document: give one file.');
      let packagePath: string;
      let trustPath: string;
      if (opts.model) {
        if (!opts.trust)
          throw new HotocrError('USAGE', '--model needs --trust: the keys or roots that may sign it.');
        packagePath = opts.model;
        trustPath = opts.trust;
      } else {
        const bundled = await ensureBundledPackage(readEnvironment().home);
        packagePath = bundled.packagePath;
        trustPath = opts.trust ?? bundled.trustPath;
        if (bundled.createdKey)
          process.stderr.write(`note: created a development signing key in ${bundled.trustPath}\n`);
      }
      const pkg = await verifyPackage(packagePath, {
        trust: await TrustStore.load(trustPath),
        keepBytes: true,
      });
      const model = await loadOcrModel(pkg);
      const modelRef = { name: pkg.manifest.name, version: pkg.manifest.version };
      const read = (image: RgbImage) => model.read(image);
      try {
        for (const file of files) {
          try {
            const bytes = await readFile(file);
            const isDocument =
              bodyKind(bytes) === 'pdf' ||
              pages !== undefined ||
              opts.searchablePdf !== undefined ||
              (bodyKind(bytes) === 'tiff' && (await imagePageCount(bytes)) > 1);
            if (!isDocument) {
              const t = performance.now();
              const image = await decodeImage(bytes);
              const decode = performance.now() - t;
              const result = await read(image);
              const timings = timingsOf({ decode, ...result.timings, total: performance.now() - t });
              if (opts.json)
                process.stdout.write(
                  `${JSON.stringify({ file, model: modelRef, lines: linesOf(result.lines), timings })}\n`,
                );
              else
                printLines(
                  `${file}`,
                  result,
                  `${pkg.manifest.name} ${pkg.manifest.version}, ${timings.total} ms`,
                );
              continue;
            }
            const document = await openDocument(bytes, {
              dpi,
              maxPages,
              maxPagePixels: DEFAULT_MAX_PAGE_PIXELS,
              ...(pages ? { pages } : {}),
              ...(password ? { password } : {}),
            });
            try {
              if (opts.searchablePdf) checkRewritable(document);
              await readPages(file, document, read, opts, modelRef);
            } finally {
              document.close();
            }
          } catch (error) {
            if (!(error instanceof HotocrError)) throw error;
            process.stderr.write(`${file}: ${error.code}: ${error.message}\n`);
            process.exitCode = EXIT.invalid;
          }
        }
      } finally {
        await model.release();
      }
    });
}

/** The password in `file`: its first line, as bytes (the line end, and a byte-order mark, are not part of it). */
async function readPassword(file: string): Promise<Uint8Array> {
  let text: Buffer;
  try {
    text = await readFile(file);
  } catch (cause) {
    throw new HotocrError('USAGE', `--password-file ${file} cannot be read: ${messageOf(cause)}.`, { cause });
  }
  // A byte-order mark some editors write is not part of the password.
  const start = text.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])) ? 3 : 0;
  const end = text.indexOf(0x0a, start);
  let line = end < 0 ? text.subarray(start) : text.subarray(start, end);
  if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
  if (line.length === 0 || line.includes(0))
    throw new HotocrError(
      'USAGE',
      `--password-file ${file} holds no password on its first line (or one with a NUL byte).`,
    );
  return line;
}

async function readPages(
  file: string,
  document: OpenDocument,
  read: (image: RgbImage) => Promise<OcrResult>,
  opts: OcrOptions,
  model: { name: string; version: string },
): Promise<void> {
  const texts: PageText[] = [];
  await readDocument(document, read, ({ page, width, height, result, render }) => {
    const timings = timingsOf({ render, ...result.timings });
    if (opts.json)
      process.stdout.write(
        `${JSON.stringify({ file, page, width, height, model, lines: linesOf(result.lines), timings })}\n`,
      );
    else
      printLines(
        `${file} page ${page}`,
        result,
        `${width}x${height}, ${round(render + result.timings.inference)} ms`,
      );
    if (opts.searchablePdf) texts.push({ page, width, height, lines: result.lines });
  });
  if (!opts.searchablePdf) return;
  const out = opts.searchablePdf;
  // Written beside the target and renamed: a failure never leaves half a PDF under its name.
  const partial = `${out}.partial-${process.pid}`;
  try {
    await writeFile(partial, await searchablePdf(document, texts));
    await rename(partial, out);
  } finally {
    await rm(partial, { force: true });
  }
  if (!opts.json)
    process.stdout.write(
      `wrote ${out} (${texts.length} pages; those without text of their own now have a layer)\n`,
    );
}

function printLines(what: string, result: OcrResult, facts: string): void {
  process.stdout.write(`${what}: ${result.lines.length} lines (${facts})\n`);
  for (const l of result.lines) process.stdout.write(`  ${l.score.toFixed(2)}  ${l.text}\n`);
}

function timingsOf(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)]));
}

function linesOf(lines: readonly OcrLine[]) {
  return lines.map((l) => ({ text: l.text, score: Math.round(l.score * 1e4) / 1e4, box: l.box }));
}
