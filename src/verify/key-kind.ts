import type { KeyObject } from 'node:crypto';

/** The signature schemes hotocr accepts, chosen by the trusted key's type. */
export type SignatureAlgorithm = 'rsa-pss-sha256' | 'ecdsa-p256-sha256' | 'ecdsa-p384-sha256' | 'ed25519';

/** Which scheme a public key signs with, or a sentence saying why it is not accepted. */
export function algorithmOf(key: KeyObject): SignatureAlgorithm | { unsupported: string } {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      if (bits < 2048) return { unsupported: `an RSA key of ${bits} bits is too weak; use at least 2048` };
      return 'rsa-pss-sha256';
    }
    case 'ec':
      if (details.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256';
      if (details.namedCurve === 'secp384r1') return 'ecdsa-p384-sha256';
      return { unsupported: `EC curve ${details.namedCurve} is not supported; use P-256 or P-384` };
    case 'ed25519':
      return 'ed25519';
    default:
      return {
        unsupported: `${key.asymmetricKeyType} keys are not supported; use RSA, ECDSA P-256/P-384 or Ed25519`,
      };
  }
}
