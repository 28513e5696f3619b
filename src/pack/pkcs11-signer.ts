import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { messageOf, PackError } from '../errors.js';
import { algorithmOf, digestOf } from '../verify/index.js';
import { ecdsaRawToDer } from './ecdsa.js';
import { loadPkcs11Binding } from './pkcs11-binding.js';
import { checkScheme, type PackageSigner } from './signer.js';

export interface Pkcs11Options {
  /** The PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly module: string;
  /** The token's label. */
  readonly token: string;
  /** The label of the private key (and of its public key) on the token. */
  readonly key: string;
  /** The user PIN; read from an environment variable or a file by the caller, never a flag. */
  readonly pin: string;
}

/** Named curves by the DER of their OID (CKA_EC_PARAMS), as JWK names them. */
const CURVES: Record<string, 'P-256' | 'P-384' | 'P-521'> = {
  '06082a8648ce3d030107': 'P-256',
  '06052b81040022': 'P-384',
  '06052b81040023': 'P-521',
};

const b64url = (b: Buffer) => b.toString('base64url');

/** The value of a DER OCTET STRING (CKA_EC_POINT wraps the point in one). */
function unwrapOctetString(der: Buffer): Buffer {
  if (der[0] !== 0x04) return der;
  let length = der[1]!;
  let offset = 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = der.readUIntBE(2, bytes);
    offset = 2 + bytes;
  }
  return offset + length === der.length ? der.subarray(offset) : der;
}

function describe(error: unknown): string {
  const message = messageOf(error) ?? String(error);
  return message.split('\n')[0]!;
}

/**
 * Signs inside a PKCS#11 token (an HSM, a smart card, SoftHSM): the private key never
 * leaves it. RSA keys sign with RSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt); EC keys with
 * ECDSA over the scheme's digest (SHA-256 for P-256 and, in a hotocr package, P-384; SHA-384
 * and SHA-512 for P-384 and P-521 in an OMS one), the token's raw r||s turned into DER as
 * openssl writes it.
 * The public key is read from the token, to self-verify the package before it is written.
 */
export async function pkcs11Signer(options: Pkcs11Options): Promise<PackageSigner> {
  const pkcs11js = await loadPkcs11Binding();
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(options.module);
  } catch (error) {
    throw new PackError(
      'PKCS11_MODULE_INVALID',
      `Cannot load the PKCS#11 module ${options.module}: ${describe(error)}`,
      { cause: error },
    );
  }
  let initialized = false;
  let session: Buffer | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      if (session) p11.C_CloseSession(session);
      if (initialized) p11.C_Finalize();
      p11.close();
    } catch {
      // Closing is best effort; the process ends soon after packing.
    }
  };
  try {
    p11.C_Initialize();
    initialized = true;
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === options.token);
    if (!slot)
      throw new PackError(
        'PKCS11_TOKEN_NOT_FOUND',
        `No token labelled "${options.token}" in ${options.module}; tokens present: ${
          p11
            .C_GetSlotList(true)
            .map((s) => `"${p11.C_GetTokenInfo(s).label.trim()}"`)
            .join(', ') || 'none'
        }.`,
      );
    session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      p11.C_Login(session, pkcs11js.CKU_USER, options.pin);
    } catch (error) {
      const code = (error as { code?: number }).code;
      throw new PackError(
        code === pkcs11js.CKR_PIN_INCORRECT ? 'PKCS11_PIN_INCORRECT' : 'PKCS11_LOGIN_FAILED',
        code === pkcs11js.CKR_PIN_INCORRECT
          ? `The PIN for token "${options.token}" is wrong.`
          : `Cannot log in to token "${options.token}": ${describe(error)}`,
        { cause: error },
      );
    }
    const find = (cls: number): Buffer | null => {
      p11.C_FindObjectsInit(session!, [
        { type: pkcs11js.CKA_CLASS, value: cls },
        { type: pkcs11js.CKA_LABEL, value: options.key },
      ]);
      const handle = p11.C_FindObjects(session!);
      p11.C_FindObjectsFinal(session!);
      return handle;
    };
    const privateKey = find(pkcs11js.CKO_PRIVATE_KEY);
    if (!privateKey)
      throw new PackError(
        'PKCS11_KEY_NOT_FOUND',
        `No private key labelled "${options.key}" on token "${options.token}".`,
      );
    const publicHandle = find(pkcs11js.CKO_PUBLIC_KEY);
    if (!publicHandle)
      throw new PackError(
        'PKCS11_KEY_NOT_FOUND',
        `No public key labelled "${options.key}" on token "${options.token}": hotocr reads it to check the package it writes.`,
      );
    const attribute = (handle: Buffer, type: number): Buffer => {
      const [got] = p11.C_GetAttributeValue(session!, handle, [{ type }]);
      return got!.value as Buffer;
    };
    const keyType = attribute(privateKey, pkcs11js.CKA_KEY_TYPE).readUIntLE(0, 4);
    let publicKey: KeyObject;
    if (keyType === pkcs11js.CKK_RSA) {
      publicKey = createPublicKey({
        key: {
          kty: 'RSA',
          n: b64url(attribute(publicHandle, pkcs11js.CKA_MODULUS)),
          e: b64url(attribute(publicHandle, pkcs11js.CKA_PUBLIC_EXPONENT)),
        },
        format: 'jwk',
      });
    } else if (keyType === pkcs11js.CKK_EC) {
      const curve = CURVES[attribute(publicHandle, pkcs11js.CKA_EC_PARAMS).toString('hex')];
      if (!curve)
        throw new PackError(
          'KEY_INVALID',
          `The key "${options.key}" is on a curve hotocr does not use (P-256, P-384, P-521).`,
        );
      const point = unwrapOctetString(attribute(publicHandle, pkcs11js.CKA_EC_POINT));
      const size = (point.length - 1) / 2;
      publicKey = createPublicKey({
        key: {
          kty: 'EC',
          crv: curve,
          x: b64url(point.subarray(1, 1 + size)),
          y: b64url(point.subarray(1 + size)),
        },
        format: 'jwk',
      });
    } else {
      throw new PackError('KEY_INVALID', `The key "${options.key}" is neither RSA nor EC.`);
    }
    const algorithm = algorithmOf(publicKey);
    if (typeof algorithm !== 'string')
      throw new PackError('KEY_INVALID', `The key "${options.key}": ${algorithm.unsupported}.`);

    return {
      algorithm,
      publicKey,
      close,
      async sign(data, scheme = algorithm) {
        checkScheme(publicKey, scheme, `The key "${options.key}"`);
        try {
          if (scheme === 'rsa-pss-sha256') {
            p11.C_SignInit(
              session!,
              {
                mechanism: pkcs11js.CKM_SHA256_RSA_PKCS_PSS,
                parameter: {
                  type: pkcs11js.CK_PARAMS_RSA_PSS,
                  hashAlg: pkcs11js.CKM_SHA256,
                  mgf: pkcs11js.CKG_MGF1_SHA256,
                  saltLen: 32,
                },
              },
              privateKey,
            );
            return Buffer.from(p11.C_Sign(session!, data, Buffer.alloc(1024)));
          }
          p11.C_SignInit(session!, { mechanism: pkcs11js.CKM_ECDSA }, privateKey);
          // The token signs the digest the scheme names, computed here.
          const digest = createHash(digestOf(scheme) ?? 'sha256')
            .update(data)
            .digest();
          return ecdsaRawToDer(Buffer.from(p11.C_Sign(session!, digest, Buffer.alloc(256))));
        } catch (error) {
          throw new PackError('PKCS11_SIGN_FAILED', `The token refused to sign: ${describe(error)}`, {
            cause: error,
          });
        }
      },
    };
  } catch (error) {
    close();
    throw error instanceof PackError
      ? error
      : new PackError('PKCS11_FAILED', `PKCS#11: ${describe(error)}`, { cause: error });
  }
}
