import { generateKeyPair, type KeyObject } from 'node:crypto';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PackError } from '../errors.js';

const generate = promisify(generateKeyPair);

export type KeyType = 'rsa' | 'ecdsa' | 'ed25519';

export interface KeygenOptions {
  readonly type: KeyType;
  readonly out: string;
  /** RSA modulus size (default 3072). */
  readonly bits?: number;
  /** ECDSA curve (default P-256). */
  readonly curve?: 'P-256' | 'P-384';
  /** Replace existing files. */
  readonly force?: boolean;
}

export interface KeygenResult {
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
}

/** Writes `signing.key` (PKCS#8, mode 0600) and `signing.pub` (SPKI) into `out`. */
export async function keygen(options: KeygenOptions): Promise<KeygenResult> {
  let pair: { publicKey: KeyObject; privateKey: KeyObject };
  switch (options.type) {
    case 'rsa':
      pair = await generate('rsa', { modulusLength: options.bits ?? 3072 });
      break;
    case 'ecdsa':
      pair = await generate('ec', { namedCurve: options.curve ?? 'P-256' });
      break;
    case 'ed25519':
      pair = await generate('ed25519', {});
      break;
    default:
      throw new PackError(
        'KEY_TYPE_INVALID',
        `Unknown key type ${JSON.stringify(options.type)}; use rsa, ecdsa or ed25519.`,
      );
  }
  await mkdir(options.out, { recursive: true });
  const privateKeyPath = join(options.out, 'signing.key');
  const publicKeyPath = join(options.out, 'signing.pub');
  if (!options.force) {
    for (const path of [privateKeyPath, publicKeyPath]) {
      if (
        await access(path).then(
          () => true,
          () => false,
        )
      ) {
        throw new PackError('KEY_EXISTS', `${path} already exists; pass --force to replace the key pair.`);
      }
    }
  }
  // The private key file is created 0600, never readable by others even for a moment.
  await rm(privateKeyPath, { force: true });
  await writeFile(privateKeyPath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
    flag: 'wx',
  });
  await writeFile(publicKeyPath, pair.publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  return { privateKeyPath, publicKeyPath };
}
