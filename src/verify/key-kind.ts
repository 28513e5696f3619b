import type { KeyObject } from 'node:crypto';

/**
 * The signature schemes hotocr accepts over `checksum.sha256`. A P-384 key verifies with
 * SHA-384 (its natural pairing) or SHA-256 (what hotocr wrote before); a P-521 key with SHA-512.
 */
export type SignatureAlgorithm =
  | 'rsa-pss-sha256'
  | 'ecdsa-p256-sha256'
  | 'ecdsa-p384-sha384'
  | 'ecdsa-p384-sha256'
  | 'ecdsa-p521-sha512'
  | 'ed25519';

/** The digest a scheme hashes with (null: Ed25519 signs the message itself). */
export function digestOf(algorithm: SignatureAlgorithm): 'sha256' | 'sha384' | 'sha512' | null {
  switch (algorithm) {
    case 'ed25519':
      return null;
    case 'ecdsa-p384-sha384':
      return 'sha384';
    case 'ecdsa-p521-sha512':
      return 'sha512';
    default:
      return 'sha256';
  }
}

/**
 * Every scheme a signature by this key is checked under, the preferred first, or a sentence
 * saying why the key is not accepted.
 */
export function algorithmsOf(key: KeyObject): readonly SignatureAlgorithm[] | { unsupported: string } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      if (bits < 2048) return { unsupported: `an RSA key of ${bits} bits is too weak; use at least 2048` };
      return ['rsa-pss-sha256'];
    }
    case 'ec':
      if (details.namedCurve === 'prime256v1') return ['ecdsa-p256-sha256'];
      if (details.namedCurve === 'secp384r1') return ['ecdsa-p384-sha384', 'ecdsa-p384-sha256'];
      if (details.namedCurve === 'secp521r1') return ['ecdsa-p521-sha512'];
      return { unsupported: `EC curve ${details.namedCurve} is not supported; use P-256, P-384 or P-521` };
    case 'ed25519':
      return ['ed25519'];
    default:
      return {
        unsupported: `${key.asymmetricKeyType} keys are not supported; use RSA, ECDSA P-256/P-384/P-521 or Ed25519`,
      };
  }
}

/**
 * The scheme `hotocr pack` signs with for this key, or why the key is not accepted. P-384 keeps
 * SHA-256, which every hotocr release verifies; `hotocr verify` also takes SHA-384 from other tools.
 */
export function algorithmOf(key: KeyObject): SignatureAlgorithm | { unsupported: string } {
  const all = algorithmsOf(key);
  if (!Array.isArray(all)) return all as { unsupported: string };
  return all.includes('ecdsa-p384-sha256') ? 'ecdsa-p384-sha256' : all[0]!;
}
