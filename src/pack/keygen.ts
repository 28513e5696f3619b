import { generateKeyPair, type KeyObject } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
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
  const flag = options.force ? 'w' : 'wx';
  try {
    await writeFile(privateKeyPath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
      flag,
    });
    await writeFile(publicKeyPath, pair.publicKey.export({ type: 'spki', format: 'pem' }), {
      mode: 0o644,
      flag,
    });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PackError(
        'KEY_EXISTS',
        `A key already exists in ${options.out}; pass --force to replace it.`,
        { cause },
      );
    }
    throw cause;
  }
  return { privateKeyPath, publicKeyPath };
}
