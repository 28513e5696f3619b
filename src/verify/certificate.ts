import { X509Certificate } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { keyFingerprint } from './fingerprint.js';

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  codeSigning: '1.3.6.1.5.5.7.3.3',
} as const;

/** Extensions whose meaning this verifier enforces or that cannot widen what a certificate may do. */
const UNDERSTOOD = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

export const CODE_SIGNING_OID = OID.codeSigning;

/** The facts of an X.509 certificate that the chain policy needs, parsed once. */
export interface CertificateInfo {
  readonly der: Buffer;
  readonly node: X509Certificate;
  readonly pkijs: pkijs.Certificate;
  readonly subject: string;
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** basicConstraints cA (false when the extension is absent). */
  readonly isCA: boolean;
  readonly pathLen: number | undefined;
  /** keyUsage bits by name, or undefined when the extension is absent. */
  readonly keyUsage: { digitalSignature: boolean; keyCertSign: boolean } | undefined;
  /** extKeyUsage OIDs, or undefined when absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  /** OIDs of critical extensions this verifier does not understand. */
  readonly unknownCritical: readonly string[];
  /** SHA-256 of the SubjectPublicKeyInfo, hex: the same key in two certificates has the same one. */
  readonly keyFingerprint: string;
  /** The signature over the certificate, as written: two copies of one certificate share it. */
  readonly signatureValue: Buffer;
  /** The signature algorithm, by name when it is one this verifier accepts, else by OID. */
  readonly signatureAlgorithm: string;
  /** Why the certificate's signature algorithm or its key is not accepted, or undefined. */
  readonly weakness: string | undefined;
}

const HASHES: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};

/** Signature algorithms a certificate may be signed with (RSA-PSS is judged by its parameters). */
const SIGNATURES: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'Ed25519',
};

/** Names for the refused ones people meet most, so that a refusal reads well. */
const WEAK_SIGNATURES: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.10040.4.3': 'dsa-with-SHA1',
  '2.16.840.1.101.3.4.3.2': 'dsa-with-SHA256',
  '1.3.101.113': 'Ed448',
};

const RSA_PSS = '1.2.840.113549.1.1.10';
const MGF1 = '1.2.840.113549.1.1.8';
const SHA1 = '1.3.14.3.2.26';

/** The signature algorithm's name, and whether it is accepted. */
function signatureAlgorithmOf(cert: pkijs.Certificate): { name: string; accepted: boolean } {
  const oid = cert.signatureAlgorithm.algorithmId;
  if (oid === RSA_PSS) {
    let params: pkijs.RSASSAPSSParams;
    try {
      params = new pkijs.RSASSAPSSParams({ schema: cert.signatureAlgorithm.algorithmParams });
    } catch {
      // Absent parameters mean SHA-1 throughout (RFC 4055 defaults).
      return { name: 'RSASSA-PSS with SHA-1', accepted: false };
    }
    const hash = params.hashAlgorithm.algorithmId;
    const mgf = params.maskGenAlgorithm;
    let mgfHash = SHA1;
    if (mgf.algorithmId === MGF1) {
      try {
        mgfHash = new pkijs.AlgorithmIdentifier({ schema: mgf.algorithmParams }).algorithmId;
      } catch {
        mgfHash = SHA1;
      }
    }
    const name = `RSASSA-PSS with ${HASHES[hash] ?? (hash === SHA1 ? 'SHA-1' : hash)}`;
    return { name, accepted: HASHES[hash] !== undefined && mgf.algorithmId === MGF1 && mgfHash === hash };
  }
  const accepted = SIGNATURES[oid];
  if (accepted) return { name: accepted, accepted: true };
  return { name: WEAK_SIGNATURES[oid] ?? oid, accepted: false };
}

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** Why a certificate's key is too weak or of a kind not accepted, or undefined. */
function keyWeakness(node: X509Certificate): string | undefined {
  const key = node.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      return bits < 2048 ? `its RSA key has ${bits} bits (at least 2048 are required)` : undefined;
    }
    case 'ec':
      return details.namedCurve && CURVES[details.namedCurve]
        ? undefined
        : `its EC key is on curve ${details.namedCurve ?? 'unknown'} (P-256, P-384 or P-521 are accepted)`;
    case 'ed25519':
      return undefined;
    default:
      return `its key is ${key.asymmetricKeyType ?? 'of an unknown type'} (RSA, ECDSA or Ed25519 are accepted)`;
  }
}

/** Parses a DER certificate; throws on anything that is not one. */
export function parseCertificate(der: Buffer): CertificateInfo {
  const node = new X509Certificate(der);
  const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  let isCA = false;
  let pathLen: number | undefined;
  let keyUsage: CertificateInfo['keyUsage'];
  let extKeyUsage: string[] | undefined;
  const unknownCritical: string[] = [];
  for (const ext of cert.extensions ?? []) {
    if (ext.critical && !UNDERSTOOD.has(ext.extnID)) unknownCritical.push(ext.extnID);
    if (ext.extnID === OID.basicConstraints) {
      const bc = ext.parsedValue as pkijs.BasicConstraints;
      isCA = bc.cA === true;
      if (typeof bc.pathLenConstraint === 'number') pathLen = bc.pathLenConstraint;
    } else if (ext.extnID === OID.keyUsage) {
      const bits = ext.parsedValue as asn1js.BitString;
      const first = bits.valueBlock.valueHexView[0] ?? 0;
      keyUsage = { digitalSignature: (first & 0x80) !== 0, keyCertSign: (first & 0x04) !== 0 };
    } else if (ext.extnID === OID.extKeyUsage) {
      extKeyUsage = (ext.parsedValue as pkijs.ExtKeyUsage).keyPurposes;
    }
  }
  const algorithm = signatureAlgorithmOf(cert);
  const weakKey = keyWeakness(node);
  return {
    der,
    node,
    pkijs: cert,
    // Node gives no subject at all for an empty one (a certificate named by its alternative name alone).
    subject: (node.subject ?? '').replace(/\n/g, ', '),
    fingerprint: node.fingerprint256.replace(/:/g, '').toLowerCase(),
    notBefore: new Date(node.validFrom),
    notAfter: new Date(node.validTo),
    isCA,
    pathLen,
    keyUsage,
    extKeyUsage,
    unknownCritical,
    keyFingerprint: keyFingerprint(node.publicKey),
    signatureValue: Buffer.from(cert.signatureValue.valueBlock.valueHexView),
    signatureAlgorithm: algorithm.name,
    weakness: !algorithm.accepted
      ? `it is signed with ${algorithm.name} (RSA PKCS#1 v1.5 or PSS, or ECDSA, with SHA-256, SHA-384 or SHA-512, or Ed25519, are accepted)`
      : weakKey,
  };
}
