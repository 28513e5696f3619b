import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { PackError } from '../errors.js';
import { algorithmOf, isDerEcdsaSignature } from '../verify/index.js';
import { ecdsaRawToDer } from './ecdsa.js';
import type { PackageSigner } from './signer.js';

export interface CommandSignerOptions {
  /** A shell command: it reads the bytes to sign on standard input, writes the signature on standard output. */
  readonly command: string;
  /** The public half of the key it signs with: the written package is checked against it. */
  readonly publicKey: KeyObject;
  /** How long the command may take (default 60 s). */
  readonly timeoutMs?: number;
}

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

/**
 * Signs by handing `checksum.sha256` to an external program (a KMS or HSM command line,
 * `openssl dgst -sha256 -sign ...`), so hotocr never holds the private key. The signature may
 * come back as raw bytes or base64 text; an ECDSA signature as DER or as raw r||s (turned
 * into DER). A command that fails, times out or prints nothing is a clear error.
 */
export function commandSigner(options: CommandSignerOptions): PackageSigner {
  const algorithm = algorithmOf(options.publicKey);
  if (typeof algorithm !== 'string')
    throw new PackError('KEY_INVALID', `--public-key: ${algorithm.unsupported}.`);
  return {
    algorithm,
    publicKey: options.publicKey,
    async sign(data) {
      const output = await run(options.command, data, options.timeoutMs ?? 60_000);
      let signature = output;
      const text = output.toString('latin1');
      if (BASE64.test(text) && text.trim().length > 0)
        signature = Buffer.from(text.replace(/\s+/g, ''), 'base64');
      if (signature.length === 0)
        throw new PackError(
          'SIGN_COMMAND_EMPTY',
          `The signing command printed no signature: ${options.command}`,
        );
      if (algorithm.startsWith('ecdsa') && !isDerEcdsaSignature(signature))
        signature = ecdsaRawToDer(signature);
      return signature;
    },
  };
}

function run(command: string, input: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let size = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new PackError(
          'SIGN_COMMAND_FAILED',
          `The signing command took longer than ${timeoutMs} ms: ${command}`,
        ),
      );
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= 1 << 16) out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-2000);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(
        new PackError('SIGN_COMMAND_FAILED', `Cannot run the signing command: ${error.message}`, {
          cause: error,
        }),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(Buffer.concat(out));
      reject(
        new PackError(
          'SIGN_COMMAND_FAILED',
          `The signing command ${signal ? `was killed (${signal})` : `exited with ${code}`}${err.trim() ? `: ${err.trim()}` : ''}`,
        ),
      );
    });
    child.stdin.on('error', () => {}); // a command that does not read its input fails on its own terms
    child.stdin.end(input);
  });
}
