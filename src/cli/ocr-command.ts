import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { readEnvironment } from '../config.js';
import { HotocrError } from '../errors.js';
import { loadOcrModel } from '../loaders/index.js';
import { decodeImage } from '../ocr/index.js';
import { ensureBundledPackage } from '../pack/index.js';
import { TrustStore, verifyPackage } from '../verify/index.js';
import { EXIT } from './output.js';

const round = (n: number) => Math.round(n * 10) / 10;

export function ocrCommand(): Command {
  return new Command('ocr')
    .description('read the text of images without a server (default model: the bundled PP-OCRv4)')
    .argument('<image...>', 'PNG, JPEG, WebP or TIFF files')
    .option('--model <package>', 'a signed model package (.zip) instead of the bundled model')
    .option('--trust <file_or_dir>', 'trusted keys or roots for --model (required with it)')
    .option('--json', 'one JSON object per image per line: {file, model, lines, timings}', false)
    .action(async (images: string[], opts: { model?: string; trust?: string; json: boolean }) => {
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
      try {
        for (const file of images) {
          try {
            const t = performance.now();
            const image = await decodeImage(await readFile(file));
            const decode = performance.now() - t;
            const result = await model.read(image);
            const timings = Object.fromEntries(
              Object.entries({ decode, ...result.timings, total: performance.now() - t }).map(([k, v]) => [
                k,
                round(v),
              ]),
            );
            if (opts.json) {
              const lines = result.lines.map((l) => ({
                text: l.text,
                score: Math.round(l.score * 1e4) / 1e4,
                box: l.box,
              }));
              process.stdout.write(
                `${JSON.stringify({ file, model: { name: pkg.manifest.name, version: pkg.manifest.version }, lines, timings })}\n`,
              );
            } else {
              process.stdout.write(
                `${file}: ${result.lines.length} lines (${pkg.manifest.name} ${pkg.manifest.version}, ${timings.total} ms)\n`,
              );
              for (const l of result.lines) process.stdout.write(`  ${l.score.toFixed(2)}  ${l.text}\n`);
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
