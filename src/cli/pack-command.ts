import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { keyFileSigner, type PackProgress, pack } from '../pack/index.js';
import { formatBytes } from './output.js';

const PROGRESS_FROM = 8 * 1024 * 1024;

function progressPrinter(): (p: PackProgress) => void {
  let lastFile = '';
  let lastPercent = -1;
  const tty = process.stderr.isTTY;
  return (p) => {
    if (p.total < PROGRESS_FROM) return;
    const percent = Math.floor((p.done / p.total) * 100);
    if (p.file === lastFile && (percent === lastPercent || (!tty && percent % 25 !== 0))) return;
    lastFile = p.file;
    lastPercent = percent;
    const line = `hashing ${p.file} ${formatBytes(p.done)}/${formatBytes(p.total)} ${percent}%`;
    process.stderr.write(tty ? `\r${line}${percent === 100 ? '\n' : ''}` : `${line}\n`);
  };
}

export function packCommand(): Command {
  return new Command('pack')
    .description(
      'build and sign a hotocr/v1 package from the files of SRC_DIR (config.json, graphs, dictionary)',
    )
    .argument('<src_dir>', 'folder holding config.json and the files it names (flat)')
    .requiredOption('--key <file>', 'private key (PEM) to sign checksum.sha256 with')
    .requiredOption('--out <file>', 'package to write, e.g. ppocr-2.1.0.zip')
    .option('--cert <file>', "the signer's certificate then any intermediates (PEM), stored as signer.pem")
    .action(async (srcDir: string, opts: { key: string; out: string; cert?: string }) => {
      const signer = await keyFileSigner(opts.key);
      const result = await pack(srcDir, {
        signer,
        out: opts.out,
        ...(opts.cert ? { certificateChain: await readFile(opts.cert) } : {}),
        onProgress: progressPrinter(),
      });
      process.stdout.write(
        `${result.path}: ${result.manifest.name} ${result.manifest.version}, ${result.files.length} files, signed ${signer.algorithm}\nsha256 ${result.sha256}\n`,
      );
    });
}
