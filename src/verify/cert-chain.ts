import { messageOf, PackageRejectedError } from '../errors.js';
import { type CertificateInfo, CODE_SIGNING_OID, parseCertificate } from './certificate.js';
import { parsePem } from './pem.js';
import { type DeniedEntry, describeDenied, type TrustedRoot } from './trust-store.js';

/** The most certificates `signer.pem` may hold: the signer and up to four issuers. */
export const MAX_CHAIN_CERTIFICATES = 5;

/** A signer certificate that chains to a pinned root under hotocr's policy. */
export interface VerifiedChain {
  readonly leaf: CertificateInfo;
  /** Leaf first, pinned root last. */
  readonly path: readonly CertificateInfo[];
  readonly root: TrustedRoot;
}

export interface ChainOptions {
  /** The time every validity check is made at. */
  readonly now: Date;
  /** Certificates and keys refused wherever they appear (the trust store's deny lists). */
  readonly denied?: (...fingerprints: string[]) => DeniedEntry | undefined;
  /** Called between steps; throws when the time allowed for the trust stage is spent. */
  readonly checkpoint?: () => void;
  /** What the chain is called in messages (default `signer.pem`). */
  readonly source?: string;
  /**
   * Accept a signer certificate marked CA:TRUE. Only for OpenSSF Model Signing, whose reference
   * verifier accepts one (and whose reference certificates are made so); every other rule stays.
   */
  readonly signerMayBeCA?: boolean;
}

const SIGNER_PEM = 'signer.pem';

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new PackageRejectedError('CERT_CHAIN_INVALID', message, { details, cause });
}

/** "certificate 2 of signer.pem (CN=intermediate)": where in the chain, and who. */
function which(cert: CertificateInfo, index: number, source: string): string {
  return `certificate ${index + 1} of ${source} (${cert.subject})`;
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
 * Parses `signer.pem` and applies every rule that needs no pinned root: 1 to
 * {@link MAX_CHAIN_CERTIFICATES} certificates, leaf first, each signed by the next; no
 * certificate twice (by key or by signature, never by name: a signer may carry its issuer's
 * subject name); strong algorithms and keys; dates; the deny list; and the CA and usage
 * rules of {@link applyPolicy}. No path is searched, so any input is answered in a bounded
 * number of signature checks. `hotocr pack --cert` runs it before writing anything.
 */
export function checkSignerChain(pem: Buffer, options: ChainOptions): CertificateInfo[] {
  const blocks = parsePem(pem.toString('utf8')).filter((b) => b.type === 'CERTIFICATE');
  if (blocks.length === 0) invalid(`${options.source ?? SIGNER_PEM} holds no CERTIFICATE block.`);
  return checkCertificateList(
    blocks.map((b) => b.der),
    options,
  );
}

/** {@link checkSignerChain} on certificates given as DER, signer first (a bundle's x509CertificateChain). */
export function checkCertificateList(ders: readonly Buffer[], options: ChainOptions): CertificateInfo[] {
  const source = options.source ?? SIGNER_PEM;
  if (ders.length === 0) invalid(`${source} holds no certificate.`);
  if (ders.length > MAX_CHAIN_CERTIFICATES)
    invalid(
      `${source} holds ${ders.length} certificates; at most ${MAX_CHAIN_CERTIFICATES} are allowed (the signer, then its issuers in order, the root optional).`,
      { certificates: ders.length, limit: MAX_CHAIN_CERTIFICATES },
    );
  const chain = ders.map((der, i) => {
    try {
      return parseCertificate(der);
    } catch (cause) {
      return invalid(
        `Certificate ${i + 1} of ${source} cannot be parsed (${messageOf(cause)}).`,
        { index: i + 1 },
        cause,
      );
    }
  });
  options.checkpoint?.();
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    for (let j = 0; j < i; j++) {
      const earlier = chain[j]!;
      const same =
        earlier.keyFingerprint === cert.keyFingerprint
          ? 'key'
          : earlier.signatureValue.equals(cert.signatureValue)
            ? 'signature'
            : undefined;
      if (same)
        invalid(
          `${which(cert, i, source)} has the same ${same} as certificate ${j + 1}: ${source} holds each certificate once, leaf first, each signed by the next (a loop or a duplicate is refused).`,
          { index: i + 1, other: j + 1 },
        );
    }
    checkCertificate(cert, which(cert, i, source), options);
  }
  for (let i = 0; i < chain.length; i++)
    checkDates(chain[i]!, i === 0 ? 'signer' : 'intermediate', options.now);
  for (let i = 0; i + 1 < chain.length; i++) {
    checkLink(
      chain[i]!,
      chain[i + 1]!,
      which(chain[i]!, i, source),
      which(chain[i + 1]!, i + 1, source),
      source,
    );
    options.checkpoint?.();
  }
  applyPolicy(chain, options);
  return chain;
}

/**
 * Verifies `signer.pem` against the pinned roots at `options.now`: {@link checkSignerChain},
 * then its last certificate is a pinned root (byte for byte) or is signed by one. Refusals are
 * CERT_CHAIN_INVALID (or CERT_EXPIRED), saying which certificate and why.
 */
export function verifyChain(
  pem: Buffer,
  roots: readonly TrustedRoot[],
  options: ChainOptions,
): VerifiedChain {
  noRoots(roots);
  return verifyPath(checkSignerChain(pem, options), roots, options);
}

/** {@link verifyChain} on certificates given as DER, signer first (a bundle's x509CertificateChain). */
export function verifyCertificateList(
  ders: readonly Buffer[],
  roots: readonly TrustedRoot[],
  options: ChainOptions,
): VerifiedChain {
  noRoots(roots);
  return verifyPath(checkCertificateList(ders, options), roots, options);
}

function noRoots(roots: readonly TrustedRoot[]): void {
  if (roots.length === 0) {
    throw new PackageRejectedError(
      'KEY_UNTRUSTED',
      'The package is signed with a certificate, but no root certificate is pinned in the trust store.',
    );
  }
}

/** The chain's last certificate is a pinned root (byte for byte) or is signed by one. */
function verifyPath(
  chain: CertificateInfo[],
  roots: readonly TrustedRoot[],
  options: ChainOptions,
): VerifiedChain {
  const source = options.source ?? SIGNER_PEM;
  const leaf = chain[0]!;
  const last = chain[chain.length - 1]!;
  let root = roots.find((r) => r.certificate.der.equals(last.der));
  let path: CertificateInfo[] = chain;
  if (root) {
    if (chain.length === 1)
      invalid(`${source} holds the pinned root ${last.subject} alone; sign with an end-entity certificate.`);
  } else {
    const named = roots.filter((r) => (r.certificate.node.subject ?? '') === (last.node.issuer ?? ''));
    if (named.length === 0)
      invalid(
        `The signer certificate ${leaf.subject} does not chain to a pinned root: the last certificate of ${source} (${last.subject}) was issued by ${(last.node.issuer ?? '').replace(/\n/g, ', ')}, which is not pinned.`,
        { subject: leaf.subject, issuer: (last.node.issuer ?? '').replace(/\n/g, ', ') },
      );
    root = named.find((r) => signedBy(last, r.certificate));
    if (!root)
      invalid(
        `The last certificate of ${source} (${last.subject}) names the pinned root ${named[0]!.certificate.subject} (${named[0]!.source}) as its issuer, but that root's key did not sign it.`,
        { subject: last.subject, root: named[0]!.source },
      );
    path = [...chain, root.certificate];
    // The root's own rules were checked when it was pinned; what may have changed since is the clock and the deny list.
    checkCertificate(
      root.certificate,
      `the pinned root ${root.certificate.subject} (${root.source})`,
      options,
    );
    checkDates(root.certificate, 'root', options.now);
    applyPolicy(path, options);
  }
  options.checkpoint?.();
  return { leaf, path, root };
}

/** Strength of the signature and key, and the deny list, for one certificate. */
function checkCertificate(cert: CertificateInfo, what: string, options: ChainOptions): void {
  const denied = options.denied?.(cert.fingerprint, cert.keyFingerprint);
  if (denied)
    invalid(`${capitalise(what)} is on the deny list (${describeDenied(denied)}).`, {
      subject: cert.subject,
      fingerprint: denied.fingerprint,
      deniedBy: `${denied.source}:${denied.line}`,
    });
  if (cert.weakness)
    invalid(`${capitalise(what)} is refused: ${cert.weakness}.`, {
      subject: cert.subject,
      signatureAlgorithm: cert.signatureAlgorithm,
    });
  if (cert.unknownCritical.length > 0)
    invalid(
      `${capitalise(what)} carries critical extensions this verifier does not understand (${cert.unknownCritical.join(', ')}).`,
      { subject: cert.subject },
    );
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Whether `issuer`'s key made `cert`'s signature (OpenSSL also checks the two algorithm fields agree). */
function signedBy(cert: CertificateInfo, issuer: CertificateInfo): boolean {
  try {
    return cert.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

function checkLink(
  cert: CertificateInfo,
  issuer: CertificateInfo,
  what: string,
  next: string,
  source: string,
): void {
  if ((cert.node.issuer ?? '') !== (issuer.node.subject ?? ''))
    invalid(
      `${capitalise(what)} names ${(cert.node.issuer ?? '').replace(/\n/g, ', ')} as its issuer, but the next, ${next}, is another: ${source} lists the signer first, then each issuer in order.`,
      { subject: cert.subject, issuer: (cert.node.issuer ?? '').replace(/\n/g, ', ') },
    );
  if (!signedBy(cert, issuer))
    invalid(`${capitalise(what)} is not signed by the key of the next, ${next}.`, {
      subject: cert.subject,
      issuer: issuer.subject,
    });
}

/**
 * The rules of a path that signature checks do not cover: issuers are CAs allowed to sign
 * certificates, pathLenConstraint holds, the leaf is not a CA and may sign (digitalSignature,
 * and codeSigning where extKeyUsage is present).
 */
function applyPolicy(path: readonly CertificateInfo[], options: ChainOptions): void {
  const leaf = path[0]!;
  if (leaf.isCA && !options.signerMayBeCA)
    invalid(
      `The signer certificate ${leaf.subject} is a CA (CA:TRUE); sign packages with an end-entity certificate.`,
      { subject: leaf.subject },
    );
  if (!leaf.keyUsage?.digitalSignature) {
    invalid(`The signer certificate ${leaf.subject} lacks keyUsage digitalSignature.`, {
      subject: leaf.subject,
    });
  }
  if (leaf.extKeyUsage && !leaf.extKeyUsage.includes(CODE_SIGNING_OID)) {
    invalid(
      `The signer certificate ${leaf.subject} has extKeyUsage without codeSigning; issue it with extendedKeyUsage=codeSigning.`,
      { subject: leaf.subject },
    );
  }
  for (let i = 1; i < path.length; i++) {
    const issuer = path[i]!;
    if (!issuer.isCA) {
      invalid(
        `${issuer.subject} issued a certificate but is not a CA (basicConstraints CA:FALSE or absent).`,
        { subject: issuer.subject },
      );
    }
    if (issuer.keyUsage && !issuer.keyUsage.keyCertSign) {
      invalid(`${issuer.subject} issued a certificate but its keyUsage lacks keyCertSign.`, {
        subject: issuer.subject,
      });
    }
    // Intermediate CAs between this issuer and the leaf (self-issued ones are not counted by RFC 5280).
    const below = path.slice(1, i).filter((c) => (c.node.subject ?? '') !== (c.node.issuer ?? '')).length;
    if (issuer.pathLen !== undefined && below > issuer.pathLen) {
      invalid(
        `${issuer.subject} allows ${issuer.pathLen} CA certificate(s) below it (pathLenConstraint) but the chain has ${below}.`,
        { subject: issuer.subject, pathLen: issuer.pathLen, below },
      );
    }
  }
}
