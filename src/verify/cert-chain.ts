import { webcrypto } from 'node:crypto';
import * as pkijs from 'pkijs';
import { PackageRejectedError } from '../errors.js';
import { type CertificateInfo, CODE_SIGNING_OID, parseCertificate } from './certificate.js';
import { parsePem } from './pem.js';
import type { TrustedRoot } from './trust-store.js';

pkijs.setEngine(
  'node',
  new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
);

/** A signer certificate that chains to a pinned root under hotocr's policy. */
export interface VerifiedChain {
  readonly leaf: CertificateInfo;
  /** Leaf first, pinned root last. */
  readonly path: readonly CertificateInfo[];
  readonly root: TrustedRoot;
}

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new PackageRejectedError('CERT_CHAIN_INVALID', message, { details, cause });
}

function checkDates(cert: CertificateInfo, role: string, now: Date): void {
  if (now < cert.notBefore) {
    throw new PackageRejectedError(
      'CERT_EXPIRED',
      `The ${role} certificate ${cert.subject} is not valid before ${cert.notBefore.toISOString()}; check the signer's clock or wait.`,
      { details: { subject: cert.subject, notBefore: cert.notBefore.toISOString() } },
    );
  }
  if (now > cert.notAfter) {
    throw new PackageRejectedError(
      'CERT_EXPIRED',
      `The ${role} certificate ${cert.subject} expired on ${cert.notAfter.toISOString()}; re-sign the package with a current certificate.`,
      { details: { subject: cert.subject, notAfter: cert.notAfter.toISOString() } },
    );
  }
}

/**
 * Verifies `signer.pem` (leaf, then intermediates) against the pinned roots at `now`:
 * pkijs checks every link's signature and validity, then hotocr's own policy, which pkijs
 * does not enforce: issuers are CAs allowed to sign certificates, pathLenConstraint holds,
 * the leaf is not a CA and may sign (digitalSignature, codeSigning where extKeyUsage is
 * present), and no certificate carries a critical extension we do not understand.
 */
export async function verifyChain(
  pem: Buffer,
  roots: readonly TrustedRoot[],
  now: Date,
): Promise<VerifiedChain> {
  const blocks = parsePem(pem.toString('utf8')).filter((b) => b.type === 'CERTIFICATE');
  if (blocks.length === 0) invalid('signer.pem holds no CERTIFICATE block.');
  let chain: CertificateInfo[];
  try {
    chain = blocks.map((b) => parseCertificate(b.der));
  } catch (cause) {
    invalid(`signer.pem holds a certificate that cannot be parsed (${(cause as Error).message}).`, {}, cause);
  }
  if (roots.length === 0) {
    throw new PackageRejectedError(
      'KEY_UNTRUSTED',
      'The package is signed with a certificate, but no root certificate is pinned in the trust store.',
    );
  }
  const leaf = chain[0]!;
  checkDates(leaf, 'signer', now);
  for (const cert of chain.slice(1)) checkDates(cert, 'intermediate', now);

  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: roots.map((r) => r.certificate.pkijs),
    // pkijs takes the last certificate of `certs` as the one to validate.
    certs: [...chain.slice(1), leaf].map((c) => c.pkijs),
    checkDate: now,
  });
  let result: pkijs.CertificateChainValidationEngineVerifyResult;
  try {
    result = await engine.verify();
  } catch (cause) {
    const message =
      cause instanceof Error
        ? cause.message
        : String((cause as { resultMessage?: string }).resultMessage ?? cause);
    invalid(`The signer certificate does not chain to a pinned root: ${message}.`, {}, cause);
  }
  if (!result.result || !result.certificatePath) {
    invalid(
      `The signer certificate ${leaf.subject} does not chain to a pinned root: ${result.resultMessage}.`,
      {
        subject: leaf.subject,
      },
    );
  }
  // pkijs returns the very objects it was given; map them back to what we parsed.
  const known = new Map<pkijs.Certificate, CertificateInfo>([
    ...chain.map((c) => [c.pkijs, c] as const),
    ...roots.map((r) => [r.certificate.pkijs, r.certificate] as const),
  ]);
  let path = result.certificatePath.map((c) => {
    const info = known.get(c);
    if (!info) invalid('The certificate path holds a certificate that was neither in signer.pem nor pinned.');
    return info;
  });
  if (path[0]?.fingerprint !== leaf.fingerprint) path = path.reverse();
  if (path[0]?.fingerprint !== leaf.fingerprint)
    invalid('The certificate path does not start at the signer certificate.');
  const last = path[path.length - 1]!;
  const root = roots.find((r) => r.certificate.fingerprint === last.fingerprint);
  if (!root) invalid(`The certificate path ends at ${last.subject}, which is not a pinned root.`);

  applyPolicy(path, now);
  return { leaf, path, root };
}

function applyPolicy(path: readonly CertificateInfo[], now: Date): void {
  for (const cert of path) {
    if (cert.unknownCritical.length > 0) {
      invalid(
        `${cert.subject} carries critical extensions this verifier does not understand (${cert.unknownCritical.join(', ')}).`,
        {
          subject: cert.subject,
        },
      );
    }
    checkDates(cert, cert === path[0] ? 'signer' : 'issuing', now);
  }
  const leaf = path[0]!;
  if (leaf.isCA)
    invalid(
      `The signer certificate ${leaf.subject} is a CA (CA:TRUE); sign packages with an end-entity certificate.`,
    );
  if (!leaf.keyUsage?.digitalSignature) {
    invalid(`The signer certificate ${leaf.subject} lacks keyUsage digitalSignature.`, {
      subject: leaf.subject,
    });
  }
  if (leaf.extKeyUsage && !leaf.extKeyUsage.includes(CODE_SIGNING_OID)) {
    invalid(`The signer certificate ${leaf.subject} has extKeyUsage without codeSigning.`, {
      subject: leaf.subject,
    });
  }
  for (let i = 1; i < path.length; i++) {
    const issuer = path[i]!;
    if (!issuer.isCA) {
      invalid(
        `${issuer.subject} issued a certificate but is not a CA (basicConstraints CA:FALSE or absent).`,
        {
          subject: issuer.subject,
        },
      );
    }
    if (issuer.keyUsage && !issuer.keyUsage.keyCertSign) {
      invalid(`${issuer.subject} issued a certificate but its keyUsage lacks keyCertSign.`, {
        subject: issuer.subject,
      });
    }
    // Intermediate CAs between this issuer and the leaf (self-issued ones are not counted by RFC 5280).
    const below = path.slice(1, i).filter((c) => c.node.subject !== c.node.issuer).length;
    if (issuer.pathLen !== undefined && below > issuer.pathLen) {
      invalid(
        `${issuer.subject} allows ${issuer.pathLen} CA certificate(s) below it (pathLenConstraint) but the chain has ${below}.`,
        { subject: issuer.subject, pathLen: issuer.pathLen, below },
      );
    }
  }
}
