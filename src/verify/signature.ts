import { constants, createHash, type KeyObject, publicDecrypt, verify } from 'node:crypto';
import { algorithmsOf, digestOf, type SignatureAlgorithm } from './key-kind.js';

/**
 * Verifies `signature` over `data` with the scheme the key implies. RSA-PSS recovers the salt
 * length from the signature, so OpenSSL 3.0 (maximum salt) and 3.1+ (digest-length salt)
 * signatures both verify. ECDSA signatures are DER, as `openssl dgst -sign` writes them.
 */
export function verifySignature(
  key: KeyObject,
  algorithm: SignatureAlgorithm,
  data: Buffer,
  signature: Buffer,
): boolean {
  try {
    switch (algorithm) {
      case 'rsa-pss-sha256':
        return verify(
          'sha256',
          data,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
          signature,
        );
      case 'ed25519':
        return verify(null, data, key, signature);
      default:
        return verify(digestOf(algorithm), data, { key, dsaEncoding: 'der' }, signature);
    }
  } catch {
    // A malformed signature (wrong length, bad DER) is simply not a valid one.
    return false;
  }
}

/** The scheme under which `signature` verifies over `data` with `key`, or undefined. */
export function verifyWithKey(
  key: KeyObject,
  data: Buffer,
  signature: Buffer,
): SignatureAlgorithm | undefined {
  const schemes = algorithmsOf(key);
  if (!Array.isArray(schemes)) return undefined;
  return (schemes as readonly SignatureAlgorithm[]).find((a) => verifySignature(key, a, data, signature));
}

/** What an RSA signature that failed to verify turns out to be under a given key. */
export type RsaFailure = 'pkcs1-v1.5' | 'pss-other-data' | 'not-this-key';

/**
 * Opens an RSA signature with the public key (no padding) to tell apart a signature made by
 * this key over other bytes (the signed file was changed), one made with PKCS#1 v1.5 padding,
 * and one this key did not make at all. Used only to word the refusal precisely.
 */
export function explainRsaFailure(key: KeyObject, signature: Buffer): RsaFailure {
  const bytes = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (signature.length !== bytes) return 'not-this-key';
  let em: Buffer;
  try {
    em = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return 'not-this-key';
  }
  if (em[0] === 0x00 && em[1] === 0x01) {
    const sep = em.indexOf(0x00, 2);
    if (sep > 10 && em.subarray(2, sep).every((b) => b === 0xff)) return 'pkcs1-v1.5';
  }
  return looksLikePss(em, (key.asymmetricKeyDetails?.modulusLength ?? 0) - 1)
    ? 'pss-other-data'
    : 'not-this-key';
}

/** RFC 8017 EMSA-PSS structure (SHA-256, MGF1-SHA-256), without comparing the message hash. */
function looksLikePss(em: Buffer, emBits: number): boolean {
  const emLen = Math.ceil(emBits / 8);
  const encoded = em.subarray(em.length - emLen);
  const hLen = 32;
  if (encoded.length < hLen + 2 || encoded[encoded.length - 1] !== 0xbc) return false;
  const maskedDb = encoded.subarray(0, encoded.length - hLen - 1);
  const h = encoded.subarray(encoded.length - hLen - 1, encoded.length - 1);
  const db = Buffer.alloc(maskedDb.length);
  const mask = mgf1(h, maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const one = db.findIndex((b) => b !== 0);
  return one >= 0 && db[one] === 0x01;
}

function mgf1(seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * 32 < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash('sha256').update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** True when the bytes are a complete DER ECDSA signature (SEQUENCE of two INTEGERs). */
export function isDerEcdsaSignature(signature: Buffer): boolean {
  if (signature.length < 8 || signature[0] !== 0x30) return false;
  let offset = 2;
  let length = signature[1]!;
  if (length === 0x81) {
    length = signature[2]!;
    offset = 3;
  }
  if (offset + length !== signature.length) return false;
  for (let i = 0; i < 2; i++) {
    if (signature[offset] !== 0x02) return false;
    const n = signature[offset + 1]!;
    offset += 2 + n;
  }
  return offset === signature.length;
}
