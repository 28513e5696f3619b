import { X509Certificate } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

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
  return {
    der,
    node,
    pkijs: cert,
    subject: node.subject.replace(/\n/g, ', '),
    fingerprint: node.fingerprint256.replace(/:/g, '').toLowerCase(),
    notBefore: new Date(node.validFrom),
    notAfter: new Date(node.validTo),
    isCA,
    pathLen,
    keyUsage,
    extKeyUsage,
    unknownCritical,
  };
}
