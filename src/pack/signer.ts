import { constants, createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { messageOf, PackError } from '../errors.js';
import { algorithmOf, algorithmsOf, digestOf, type SignatureAlgorithm } from '../verify/index.js';

/**
 * Produces a package's signature (over `checksum.sha256`, or over an OMS envelope): a key
 * file, a PKCS#11 token, or an external command.
 */
export interface PackageSigner {
  /** The scheme a hotocr package is signed with for this key. */
  readonly algorithm: SignatureAlgorithm;
  /** The public half, to check a certificate against and to self-verify the written package. */
  readonly publicKey: KeyObject;
  /**
   * Signs `data` under `scheme` (default `algorithm`): OMS fixes the digest by the curve where
   * hotocr keeps SHA-256 for P-384. An external command hashes as it was told on its own
   * command line, so it ignores `scheme`; the caller checks what it returns.
   */
  sign(data: Buffer, scheme?: SignatureAlgorithm): Promise<Buffer>;
  /** Ends a session with a token, if the signer holds one. Safe to call twice. */
  close?(): void;
}

/** Signs with a private key in a PEM file (PKCS#8, PKCS#1 or SEC1), as `hotocr keygen` or openssl write them. */
export async function keyFileSigner(path: string, passphrase?: string): Promise<PackageSigner> {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: await readFile(path), ...(passphrase ? { passphrase } : {}) });
  } catch (cause) {
    throw new PackError('KEY_INVALID', `Cannot read the private key ${path}: ${messageOf(cause)}.`, {
      cause,
    });
  }
  const publicKey = createPublicKey(key);
  const algorithm = algorithmOf(publicKey);
  if (typeof algorithm !== 'string') throw new PackError('KEY_INVALID', `${path}: ${algorithm.unsupported}.`);
  return {
    algorithm,
    publicKey,
    async sign(data, scheme = algorithm) {
      checkScheme(publicKey, scheme, path);
      switch (scheme) {
        case 'rsa-pss-sha256':
          // Digest-length salt: what OpenSSL 3.1+ writes by default; verifiers recover either length.
          return sign('sha256', data, {
            key,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
          });
        case 'ed25519':
          return sign(null, data, key);
        default:
          return sign(digestOf(scheme), data, { key, dsaEncoding: 'der' });
      }
    },
  };
}

/** Refuses a scheme this key cannot sign under (a P-256 key asked for SHA-384, an RSA key for ECDSA). */
export function checkScheme(publicKey: KeyObject, scheme: SignatureAlgorithm, keyName: string): void {
  const all = algorithmsOf(publicKey);
  if (Array.isArray(all) && all.includes(scheme)) return;
  throw new PackError('KEY_INVALID', `${keyName} cannot sign as ${scheme}.`);
}
