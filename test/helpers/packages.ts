import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { keyFileSigner, pack } from '../../src/pack/index.js';

const run = promisify(execFile);

export const FILES = ['config.json', 'det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt'] as const;

export function manifest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 'hotocr/v1',
    name: 'ppocr',
    version: '2.1.0',
    task: 'ocr',
    graphs: { det: 'det.onnx', rec: 'rec.onnx', cls: 'cls.onnx' },
    dict: 'keys.txt',
    ...overrides,
  };
}

/**
 * A package source folder: config.json plus stand-in graph files (verification never parses
 * ONNX, so random bytes serve) and a small dictionary.
 */
export async function sourceDir(dir: string, config: Record<string, unknown> = manifest()): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(dir, 'det.onnx'), randomBytes(4096));
  await writeFile(join(dir, 'rec.onnx'), randomBytes(8192));
  await writeFile(join(dir, 'cls.onnx'), randomBytes(1024));
  await writeFile(join(dir, 'keys.txt'), 'a\nb\nc\n中\n');
  return dir;
}

/** `hotocr pack` as a library call. */
export async function packWith(src: string, key: string, out: string, cert?: Buffer): Promise<string> {
  await pack(src, { signer: await keyFileSigner(key), out, ...(cert ? { certificateChain: cert } : {}) });
  return out;
}

export async function sh(cwd: string, script: string): Promise<string> {
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd });
  return stdout;
}

export interface StandardOptions {
  /** openssl -sigopt values (default: RSA-PSS). Empty for PKCS#1 v1.5 / ECDSA / Ed25519. */
  readonly sigopts?: string[];
  /** Shell run in the source folder after signing, before zipping: how tests tamper. */
  readonly afterSign?: string;
  /** Files that go into checksum.sha256 (default: all five). */
  readonly listed?: readonly string[];
  /** Files that go into the ZIP besides checksum.sha256 and signature.sig (default: the listed ones). */
  readonly zipped?: readonly string[];
  /** Use `openssl pkeyutl -rawin` (Ed25519 cannot be signed with dgst on OpenSSL 3.0). */
  readonly rawin?: boolean;
  /** The digest `openssl dgst` signs with (default sha256). */
  readonly digest?: 'sha256' | 'sha384' | 'sha512';
}

/**
 * Builds a package with standard tools only, exactly as SPEC section 1 shows:
 * sha256sum, openssl, zip.
 */
export async function standardPackage(
  src: string,
  key: string,
  out: string,
  options: StandardOptions = {},
): Promise<string> {
  const sigopts = (options.sigopts ?? ['rsa_padding_mode:pss']).map((o) => `-sigopt ${o}`).join(' ');
  const listed = (options.listed ?? FILES).join(' ');
  const zipped = (options.zipped ?? options.listed ?? FILES).join(' ');
  const sign = options.rawin
    ? `openssl pkeyutl -sign -rawin -inkey '${key}' -in checksum.sha256 -out signature.sig`
    : `openssl dgst -${options.digest ?? 'sha256'} ${sigopts} -sign '${key}' -out signature.sig checksum.sha256`;
  await sh(
    src,
    `sha256sum ${listed} > checksum.sha256
     ${sign}
     ${options.afterSign ?? ''}
     rm -f '${out}'
     zip -q -Z store '${out}' ${zipped} checksum.sha256 $(test -f signature.sig && echo signature.sig)
     rm -f checksum.sha256 signature.sig`,
  );
  return out;
}
