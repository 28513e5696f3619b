import { constants, createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { messageOf, PackError } from '../errors.js';
import { algorithmOf, digestOf, type SignatureAlgorithm } from '../verify/index.js';

/** Produces the signature over `checksum.sha256`: a key file, a PKCS#11 token, or an external command. */
export interface PackageSigner {
  readonly algorithm: SignatureAlgorithm;
  /** The public half, to check a certificate against and to self-verify the written package. */
  readonly publicKey: KeyObject;
  sign(data: Buffer): Promise<Buffer>;
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
    async sign(data) {
      switch (algorithm) {
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
          return sign(digestOf(algorithm), data, { key, dsaEncoding: 'der' });
      }
    },
  };
}
