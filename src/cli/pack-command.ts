import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { readPkcs11Pin } from '../config.js';
import {
  commandSigner,
  keyFileSigner,
  type PackageSigner,
  type PackFormat,
  type PackProgress,
  pack,
} from '../pack/index.js';
import { keyFingerprint, shortFingerprint } from '../verify/index.js';
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

interface PackFlags {
  key?: string;
  out: string;
  format: PackFormat;
  cert?: string;
  pkcs11Module?: string;
  pkcs11Token?: string;
  pkcs11Key?: string;
  pkcs11PinFile?: string;
  signCommand?: string;
  publicKey?: string;
}

/** The one signer the flags name: a key file, a PKCS#11 token or an external command. */
async function signerOf(opts: PackFlags, command: Command): Promise<PackageSigner> {
  const ways = [opts.key, opts.pkcs11Module, opts.signCommand].filter((x) => x !== undefined).length;
  if (ways !== 1)
    command.error(
      'error: sign with exactly one of --key, --pkcs11-module (with --pkcs11-token and --pkcs11-key) or --sign-command',
      {
        exitCode: 2,
      },
    );
  if (opts.key) return keyFileSigner(opts.key);
  if (opts.pkcs11Module) {
    if (!opts.pkcs11Token || !opts.pkcs11Key)
      command.error('error: --pkcs11-module needs --pkcs11-token LABEL and --pkcs11-key LABEL', {
        exitCode: 2,
      });
    const pin = opts.pkcs11PinFile ? (await readFile(opts.pkcs11PinFile, 'utf8')).trim() : readPkcs11Pin();
    if (!pin)
      command.error(
        'error: give the token PIN in HOTOCR_PKCS11_PIN or a file named by --pkcs11-pin-file (never on the command line)',
        {
          exitCode: 2,
        },
      );
    // Loaded only here: the native PKCS#11 binding is needed by nothing else.
    const { pkcs11Signer } = await import('../pack/pkcs11-signer.js');
    return pkcs11Signer({
      module: opts.pkcs11Module,
      token: opts.pkcs11Token!,
      key: opts.pkcs11Key!,
      pin: pin!,
    });
  }
  let publicKey: KeyObject;
  if (opts.publicKey) publicKey = createPublicKey(await readFile(opts.publicKey));
  else if (opts.cert) publicKey = new X509Certificate(await readFile(opts.cert)).publicKey;
  else
    command.error(
      'error: --sign-command needs --public-key PUB.pem (or --cert) to check the signature it returns',
      {
        exitCode: 2,
      },
    );
  return commandSigner({ command: opts.signCommand!, publicKey: publicKey! });
}

function parseFormat(value: string): PackFormat {
  if (value === 'hotocr' || value === 'oms') return value;
  throw new InvalidArgumentError(
    'give hotocr or oms (hotocr: checksum.sha256 and signature.sig; oms: model.sig, OpenSSF Model Signing).',
  );
}

export function packCommand(): Command {
  const command: Command = new Command('pack')
    .description(
      'build and sign a hotocr/v1 package from the files of SRC_DIR (config.json, graphs, dictionary), signed as hotocr signs (checksum.sha256, signature.sig) or with OpenSSF Model Signing (model.sig, --format oms); the package is verified before it is written',
    )
    .argument('<src_dir>', 'folder holding config.json and the files it names (flat)')
    .requiredOption('--out <file>', 'package to write, e.g. ppocr-2.1.0.zip')
    .option(
      '--format <format>',
      "hotocr, or oms: sign with OpenSSF Model Signing as the reference's `model_signing sign key` does (EC keys P-256, P-384, P-521 only)",
      parseFormat,
      'hotocr',
    )
    .option('--key <file>', 'private key (PEM) to sign with')
    .option(
      '--pkcs11-module <lib>',
      'sign inside a PKCS#11 token instead, through this library (e.g. libsofthsm2.so)',
    )
    .option('--pkcs11-token <label>', 'the token label')
    .option('--pkcs11-key <label>', 'the label of the key (private and public objects) on the token')
    .option('--pkcs11-pin-file <file>', 'file holding the token PIN (else HOTOCR_PKCS11_PIN)')
    .option(
      '--sign-command <cmd>',
      "sign with an external program: it reads the bytes on stdin and writes the signature (raw or base64) on stdout; with --format oms it hashes with the curve's digest (openssl dgst -sha384 -sign for P-384)",
    )
    .option(
      '--public-key <file>',
      'with --sign-command: the public key (PEM) its signatures must verify with',
    )
    .option(
      '--cert <file>',
      "the signer's certificate then any intermediates (PEM), stored as signer.pem; with --format oms, as model.sig's certificate chain (model_signing sign certificate)",
    )
    .action(async (srcDir: string, opts: PackFlags) => {
      const signer = await signerOf(opts, command);
      try {
        const result = await pack(srcDir, {
          signer,
          out: opts.out,
          format: opts.format,
          ...(opts.cert ? { certificateChain: await readFile(opts.cert) } : {}),
          onProgress: progressPrinter(),
        });
        const key = `key ${shortFingerprint(keyFingerprint(signer.publicKey))}`;
        const how =
          result.signature.format === 'oms'
            ? `signed OMS (model.sig) ${result.signature.algorithm} (${key})\nmodel digest ${result.signature.modelDigest}`
            : `signed ${result.signature.algorithm} (${key})`;
        process.stdout.write(
          `${result.path}: ${result.manifest.name} ${result.manifest.version}, ${result.files.length} files, ${how}\nsha256 ${result.sha256}\n`,
        );
      } finally {
        signer.close?.();
      }
    });
  return command;
}
