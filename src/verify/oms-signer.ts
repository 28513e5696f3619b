import { createHash, createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { dsse } from '@sigstore/core';
import { messageOf, PackageRejectedError, type RejectionCode } from '../errors.js';
import { verifyCertificateList } from './cert-chain.js';
import { type CertificateInfo, parseCertificate } from './certificate.js';
import type { OmsBundle } from './oms-bundle.js';
import { isDerEcdsaSignature } from './signature.js';
import { describeDenied, type TrustedKey, type TrustStore } from './trust-store.js';
import { checkKeyAllowed, checkStillTrusted } from './verify-package.js';

/** The schemes an OMS signature is made with: ECDSA, the digest fixed by the curve, as the reference signs. */
export type OmsAlgorithm = 'ecdsa-p256-sha256' | 'ecdsa-p384-sha384' | 'ecdsa-p521-sha512';

const BY_CURVE: Record<string, { algorithm: OmsAlgorithm; digest: string }> = {
  prime256v1: { algorithm: 'ecdsa-p256-sha256', digest: 'sha256' },
  secp384r1: { algorithm: 'ecdsa-p384-sha384', digest: 'sha384' },
  secp521r1: { algorithm: 'ecdsa-p521-sha512', digest: 'sha512' },
};

/** Who signed an OMS model that verified. */
export type OmsSigner =
  | {
      kind: 'key';
      algorithm: OmsAlgorithm;
      /** SHA-256 of the key's SubjectPublicKeyInfo, hex. */
      fingerprint: string;
      /** The trust-store file that holds the key. */
      source: string;
      notAfter?: string;
    }
  | {
      kind: 'certificate';
      algorithm: OmsAlgorithm;
      /** SHA-256 of the signing certificate (DER), hex. */
      fingerprint: string;
      subject: string;
      root: string;
      notAfter: string;
    }
  | {
      kind: 'keyless';
      algorithm: string;
      /** The certificate's subject alternative name that matched `--identity`. */
      identity: string;
      /** Its OIDC issuer extension, which matched `--issuer`. */
      issuer: string;
      /** The trust-store file and line that name this identity, when the trust store did. */
      trustedAs?: string;
      /** SHA-256 of the short-lived signing certificate (DER), hex. */
      fingerprint: string;
      /** When the transparency log recorded the signature: the time the certificate was valid at. */
      integratedTime: string;
      logIndex: string;
      /** The trusted root the certificate and the log were checked against. */
      trustedRoot: string;
    };

export interface OmsTrustOptions {
  readonly trust: TrustStore;
  /** The time `Not-After` lines are judged at. */
  readonly now: Date;
  /** The time certificate validity is judged at. */
  readonly validAt: Date;
  /** Throws once the trust stage's time budget is spent. */
  readonly checkpoint: () => void;
}

function fail(code: RejectionCode, message: string, details: Record<string, unknown> = {}): never {
  throw new PackageRejectedError(code, message, { details });
}

/** The OMS scheme for a key, or undefined when the reference could not have signed with it. */
export function omsAlgorithmOf(key: KeyObject): { algorithm: OmsAlgorithm; digest: string } | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  return BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
}

/** The reference's key hint: SHA-256 (hex) of the key's PEM SubjectPublicKeyInfo. */
export function keyHint(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'pem' }) as string)
    .digest('hex');
}

function verifies(key: KeyObject, digest: string, signed: Buffer, signature: Buffer): boolean {
  try {
    return verify(digest, signed, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

/** The bytes the DSSE signature is over. */
function signedBytes(bundle: OmsBundle): Buffer {
  return dsse.preAuthEncoding(bundle.payloadType, bundle.payload);
}

/**
 * A key- or certificate-signed bundle, checked by what the trust store holds: a chain against
 * the pinned roots when there are any; otherwise the signature by a trusted key, the chain's
 * signer standing for its key. So the reference's `model_signing verify key` takes a
 * chain-signed bundle, and hotocr takes a `signer.pem` package when no root is pinned.
 */
export function verifyTrustSigned(bundle: OmsBundle, options: OmsTrustOptions): OmsSigner {
  if (bundle.material.kind === 'certificate' && options.trust.roots.length > 0)
    return verifyCertificateSigned(bundle, options);
  return verifyKeySigned(bundle, options);
}

/**
 * The key flavour: the DSSE signature verifies with a trusted EC key (P-256 with SHA-256,
 * P-384 with SHA-384, P-521 with SHA-512), which is neither past its `Not-After` nor denied.
 * A key hint in the bundle must name that key, as the reference requires. A chain-signed
 * bundle is checked so too when no root is pinned ({@link verifyTrustSigned}).
 */
export function verifyKeySigned(bundle: OmsBundle, options: OmsTrustOptions): OmsSigner {
  const { trust } = options;
  const material = bundle.material;
  if (material.kind === 'keyless') throw new Error('not a key- or certificate-signed bundle');
  const what = material.kind === 'key' ? 'a key' : 'a certificate chain';
  if (trust.keys.length === 0)
    fail(
      'KEY_UNTRUSTED',
      material.kind === 'key'
        ? 'model.sig is signed with a key, but the trust store holds no public key (--trust KEY.pub).'
        : 'model.sig is signed with a certificate chain, but the trust store pins no root certificate (--trust CA.pem) and holds no public key.',
    );
  const signed = signedBytes(bundle);
  let match: { key: TrustedKey; algorithm: OmsAlgorithm } | undefined;
  for (const key of trust.keys) {
    options.checkpoint();
    const scheme = omsAlgorithmOf(key.key);
    if (scheme && verifies(key.key, scheme.digest, signed, bundle.signature)) {
      match = { key, algorithm: scheme.algorithm };
      break;
    }
  }
  options.checkpoint();
  if (!match) explainKeyFailure(bundle, trust.keys, what);
  if (material.kind === 'key' && material.hint !== undefined && material.hint !== keyHint(match.key.key))
    fail(
      'OMS_BUNDLE_INVALID',
      `model.sig's public key hint (${material.hint.slice(0, 80)}) names another key than trusted key ${match.key.source}, which made the signature: the bundle was edited.`,
      { hint: material.hint, key: match.key.fingerprint },
    );
  if (material.kind === 'certificate') checkChainOfKey(material.chain, match.key, trust);
  checkKeyAllowed(trust, match.key, options.now, 'model');
  return {
    kind: 'key',
    algorithm: match.algorithm,
    fingerprint: match.key.fingerprint,
    source: match.key.source,
    ...(match.key.notAfter ? { notAfter: match.key.notAfter.toISOString() } : {}),
  };
}

/**
 * A chain-signed bundle taken by key: its signing certificate must be for the key that made
 * the signature (as a key hint must name it), and no certificate of it may be denied.
 */
function checkChainOfKey(chain: readonly Buffer[], key: TrustedKey, trust: TrustStore): void {
  const certificates: CertificateInfo[] = [];
  for (const [i, der] of chain.entries()) {
    try {
      certificates.push(parseCertificate(der));
    } catch (cause) {
      fail(
        'OMS_BUNDLE_INVALID',
        `Certificate ${i + 1} of model.sig's chain cannot be read (${messageOf(cause)}).`,
      );
    }
  }
  const signer = certificates[0];
  if (!signer || !new X509Certificate(chain[0]!).publicKey.equals(key.key))
    fail(
      'OMS_BUNDLE_INVALID',
      `model.sig's signing certificate ${signer?.subject ?? ''} is for another key than trusted key ${key.source}, which made the signature: the bundle was edited.`,
      { key: key.fingerprint },
    );
  for (const cert of certificates) {
    const denied = trust.deniedAny(cert.fingerprint, cert.keyFingerprint);
    if (denied)
      fail(
        'KEY_UNTRUSTED',
        `model.sig's chain holds ${cert.subject}, which is on the deny list (${describeDenied(denied)}).`,
        { subject: cert.subject, deniedBy: `${denied.source}:${denied.line}` },
      );
  }
}

/** The key a bundle names for its signer: its hint or embedded key, or its signing certificate's key. */
function namesKey(bundle: OmsBundle, key: KeyObject): boolean {
  const material = bundle.material;
  if (material.kind === 'key') {
    const named = material.embedded ? embeddedKey(material.embedded) : undefined;
    return (material.hint !== undefined && material.hint === keyHint(key)) || named?.equals(key) === true;
  }
  if (material.kind === 'certificate') {
    try {
      return new X509Certificate(material.chain[0]!).publicKey.equals(key);
    } catch {
      return false;
    }
  }
  return false;
}

/** Words the refusal of a signature no trusted key accepts as precisely as the bundle allows. */
function explainKeyFailure(bundle: OmsBundle, keys: readonly TrustedKey[], what: string): never {
  const ec = keys.filter((k) => omsAlgorithmOf(k.key));
  const chain = bundle.material.kind === 'certificate';
  const noRoot = chain ? ', and the trust store pins no root certificate to check its chain with' : '';
  if (ec.length === 0)
    fail(
      'KEY_UNTRUSTED',
      `model.sig is signed with ${what}${noRoot}; none of the ${keys.length} trusted key(s) is an EC key (P-256, P-384 or P-521), the only kind OMS signs with.`,
    );
  if (!isDerEcdsaSignature(bundle.signature))
    fail(
      'SIGNATURE_INVALID',
      `The DSSE signature in model.sig (${bundle.signature.length} bytes) is not a complete ECDSA signature: it is truncated or damaged.`,
    );
  // The signer names its key (a hint, the key itself in older bundles, or its certificate);
  // none is trusted for itself, but each tells a trusted key's signature over other bytes
  // from a stranger's.
  const trustedNamed = ec.find((k) => namesKey(bundle, k.key));
  if (trustedNamed)
    fail(
      'SIGNATURE_INVALID',
      `model.sig names trusted key ${trustedNamed.source}${chain ? " (its signing certificate's key)" : ''}, but its signature does not verify with it: the signed statement was changed after signing.`,
      { key: trustedNamed.fingerprint },
    );
  fail(
    'KEY_UNTRUSTED',
    `model.sig is signed with ${what}${noRoot}, and was not signed by any of the ${ec.length} trusted EC key(s): the model was signed (or re-signed) with a key this trust store does not hold.`,
    { trusted: ec.map((k) => k.fingerprint) },
  );
}

/** The key an older signer embedded (PEM, or DER SubjectPublicKeyInfo), if it is one. */
function embeddedKey(bytes: Buffer): KeyObject | undefined {
  try {
    return bytes.subarray(0, 11).toString('latin1') === '-----BEGIN '
      ? createPublicKey(bytes.toString('latin1'))
      : createPublicKey({ key: bytes, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

/**
 * The certificate flavour: the bundle's x509CertificateChain (signer first) chains to a pinned
 * root under hotocr's chain rules (a list, never searched; strong algorithms; dates at
 * `validAt`; the deny list; CA and usage rules), except that the signing certificate may be
 * marked CA:TRUE, as the reference accepts; its EC key made the DSSE signature.
 */
export function verifyCertificateSigned(bundle: OmsBundle, options: OmsTrustOptions): OmsSigner {
  const { trust } = options;
  if (bundle.material.kind !== 'certificate') throw new Error('not a certificate-signed bundle');
  if (trust.roots.length === 0)
    fail(
      'KEY_UNTRUSTED',
      'model.sig is signed with a certificate chain, but the trust store pins no root certificate (--trust CA.pem).',
    );
  const chain = verifyCertificateList(bundle.material.chain, trust.roots, {
    now: options.validAt,
    denied: (...fingerprints) => trust.deniedAny(...fingerprints),
    checkpoint: options.checkpoint,
    source: "the bundle's x509CertificateChain",
    signerMayBeCA: true,
  });
  checkStillTrusted(chain.root, `root ${chain.root.source}`, options.now, 'model');
  const key = chain.leaf.node.publicKey;
  const scheme = omsAlgorithmOf(key);
  if (!scheme)
    fail(
      'OMS_UNSUPPORTED',
      `The signing certificate ${chain.leaf.subject} holds a ${key.asymmetricKeyType} key; OMS signatures are ECDSA on P-256, P-384 or P-521.`,
      { subject: chain.leaf.subject },
    );
  const ok = verifies(key, scheme.digest, signedBytes(bundle), bundle.signature);
  options.checkpoint();
  if (!ok)
    fail(
      'SIGNATURE_INVALID',
      `The DSSE signature in model.sig does not verify with the key of ${chain.leaf.subject}: the signed statement was changed after signing, or signed with another key.`,
      { subject: chain.leaf.subject },
    );
  return {
    kind: 'certificate',
    algorithm: scheme.algorithm,
    fingerprint: chain.leaf.fingerprint,
    subject: chain.leaf.subject,
    root: chain.root.certificate.subject,
    notAfter: chain.leaf.notAfter.toISOString(),
  };
}
