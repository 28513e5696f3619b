import { bundleFromJSON, ValidationError } from '@sigstore/bundle';
import { toSignedEntity, VerificationError, Verifier } from '@sigstore/verify';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { messageOf, PackageRejectedError, type RejectionCode } from '../errors.js';
import { parseCertificate } from './certificate.js';
import type { OmsBundle } from './oms-bundle.js';
import { type OmsSigner, omsAlgorithmOf } from './oms-signer.js';
import type { SigstoreTrustedRoot } from './oms-trusted-root.js';
import { describeDenied, type TrustStore } from './trust-store.js';

/** Who a keyless signature must come from: both compared exactly, as the reference does. */
export interface KeylessPolicy {
  /** The certificate's subject alternative name: an e-mail address or a URI. */
  readonly identity: string;
  /** The OIDC issuer that vouched for it (Fulcio's issuer extension). */
  readonly issuer: string;
  /** Where it was said (a trust-store file and line); undefined for `--identity` and `--issuer`. */
  readonly source?: string;
}

export interface KeylessOptions {
  /** Whom to trust: the signature must come from one of these, identity and issuer together. */
  readonly identities: readonly KeylessPolicy[];
  readonly trustedRoot: SigstoreTrustedRoot;
  /** When given, its deny lists apply to the signing certificate and its key. */
  readonly trust?: TrustStore;
}

const SUBJECT_ALT_NAME = '2.5.29.17';
const OTHER_NAME = 0;
const RFC822_NAME = 1;
const URI = 6;
/** Fulcio's otherName for identities that are neither e-mail nor URI (a username). */
const SIGSTORE_USERNAME = '1.3.6.1.4.1.57264.1.7';

function fail(
  code: RejectionCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new PackageRejectedError(code, message, { details, cause });
}

/** Which of hotocr's codes a Sigstore verification failure is. */
function codeOf(error: VerificationError): RejectionCode {
  switch (error.code) {
    case 'CERTIFICATE_ERROR':
      return /expired|not valid/.test(`${error.message} ${messageOf(error.cause ?? '')}`)
        ? 'CERT_EXPIRED'
        : 'CERT_CHAIN_INVALID';
    case 'SIGNATURE_ERROR':
      return 'SIGNATURE_INVALID';
    case 'PUBLIC_KEY_ERROR':
      return 'KEY_UNTRUSTED';
    default:
      // TLOG_*, and TIMESTAMP_ERROR: the only timestamps accepted are the log's signed ones.
      return 'TLOG_INVALID';
  }
}

const WHAT: Record<RejectionCode, string> = {
  CERT_EXPIRED: 'The signing certificate was not valid when the transparency log recorded the signature',
  CERT_CHAIN_INVALID:
    'The signing certificate does not chain to a certificate authority of the trusted root, or lacks a valid certificate-transparency proof',
  SIGNATURE_INVALID: "The DSSE signature in model.sig does not verify with the signing certificate's key",
  KEY_UNTRUSTED: 'The signing key is not trusted',
  TLOG_INVALID: "The signature's transparency-log entry does not verify against the trusted root",
} as Record<RejectionCode, string>;

/** The value of a Sigstore username otherName (`[0] UTF8String` after its OID), if it is one. */
function sigstoreUsername(value: unknown): string | undefined {
  const parts = (value as asn1js.Constructed | undefined)?.valueBlock?.value;
  const oid = parts?.[0];
  if (!(oid instanceof asn1js.ObjectIdentifier) || oid.valueBlock.toString() !== SIGSTORE_USERNAME)
    return undefined;
  const inner = (parts?.[1] as asn1js.Constructed | undefined)?.valueBlock?.value?.[0];
  return inner instanceof asn1js.Utf8String ? inner.valueBlock.value : undefined;
}

/**
 * The identities a certificate's subject alternative name holds, as sigstore-python reads
 * them for its identity policy: e-mail addresses, URIs, and Sigstore username otherNames.
 */
export function certificateIdentities(der: Buffer): string[] {
  const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  const ext = cert.extensions?.find((e) => e.extnID === SUBJECT_ALT_NAME);
  const names = (ext?.parsedValue as pkijs.AltName | undefined)?.altNames ?? [];
  return names.flatMap((n) => {
    if (n.type === RFC822_NAME || n.type === URI) return [String(n.value)];
    if (n.type === OTHER_NAME) return [sigstoreUsername(n.value)].filter((v): v is string => v !== undefined);
    return [];
  });
}

/**
 * The Sigstore keyless flavour, offline: the bundle (v0.3: its inclusion proof and checkpoint
 * required) is verified by @sigstore/verify against the trusted root: the transparency-log
 * entry's signed entry timestamp and inclusion proof, the entry recording this very envelope,
 * the Fulcio certificate chain and its certificate-transparency proof at the log's integrated
 * time, and the DSSE signature. Then hotocr's policy: the certificate's subject alternative
 * name is exactly `identity` and its OIDC issuer exactly `issuer` (the library's own policy
 * matches a pattern, which is not enough), and no deny list names it.
 */
export function verifyKeyless(bundle: OmsBundle, options: KeylessOptions): OmsSigner {
  if (bundle.material.kind !== 'keyless') throw new Error('not a keyless bundle');
  let entity: ReturnType<typeof toSignedEntity>;
  try {
    entity = toSignedEntity(bundleFromJSON(bundle.json));
  } catch (cause) {
    const fields = cause instanceof ValidationError ? ` (${(cause.fields ?? []).join(', ')})` : '';
    fail(
      'OMS_BUNDLE_INVALID',
      `model.sig is not a complete Sigstore v0.3 bundle${fields}: ${messageOf(cause)}. A keyless signature carries its transparency-log entry with an inclusion proof.`,
      {},
      cause,
    );
  }
  let signer: ReturnType<Verifier['verify']>;
  try {
    signer = new Verifier(options.trustedRoot.material).verify(entity);
  } catch (cause) {
    if (!(cause instanceof VerificationError)) throw cause;
    const code = codeOf(cause);
    const detail = cause.cause ? `${cause.message}: ${messageOf(cause.cause)}` : cause.message;
    const what =
      cause.code === 'TLOG_BODY_ERROR'
        ? "The signature's transparency-log entry records another envelope than model.sig's: the statement or its signature was changed after it was logged"
        : WHAT[code];
    fail(
      code,
      `${what} (${detail}; trusted root: ${options.trustedRoot.source}).`,
      { sigstore: cause.code },
      cause,
    );
  }

  const certificate = parseCertificate(bundle.material.certificate);
  const names = certificateIdentities(bundle.material.certificate);
  const issuer = signer.identity?.extensions?.issuer;
  const policy = matchIdentity(names, issuer, options.identities);
  const denied = options.trust?.deniedAny(certificate.fingerprint, certificate.keyFingerprint);
  if (denied)
    fail('CERT_CHAIN_INVALID', `The signing certificate is on the deny list (${describeDenied(denied)}).`, {
      fingerprint: denied.fingerprint,
      deniedBy: `${denied.source}:${denied.line}`,
    });
  const entry = entity.tlogEntries[0]!;
  return {
    kind: 'keyless',
    algorithm:
      omsAlgorithmOf(certificate.node.publicKey)?.algorithm ??
      String(certificate.node.publicKey.asymmetricKeyType),
    identity: policy.identity,
    issuer: policy.issuer,
    ...(policy.source !== undefined ? { trustedAs: policy.source } : {}),
    fingerprint: certificate.fingerprint,
    integratedTime: new Date(Number(entry.integratedTime) * 1000).toISOString(),
    logIndex: String(entry.logIndex),
    trustedRoot: options.trustedRoot.source,
  };
}

const said = (p: KeylessPolicy, flag: string) => p.source ?? flag;

/**
 * The trusted identity the certificate matches: one of its names is the identity and its
 * issuer extension the issuer, of the same entry, both exactly. Refused with IDENTITY_MISMATCH,
 * saying which half failed.
 */
function matchIdentity(
  names: readonly string[],
  issuer: string | undefined,
  policies: readonly KeylessPolicy[],
): KeylessPolicy {
  const match = policies.find((p) => names.includes(p.identity) && p.issuer === issuer);
  if (match) return match;
  const sameName = policies.filter((p) => names.includes(p.identity));
  if (sameName.length === 0)
    fail(
      'IDENTITY_MISMATCH',
      `model.sig was signed by ${names.map((n) => JSON.stringify(n)).join(', ') || 'a certificate with no e-mail, URI or username name'}, not by ${policies
        .slice(0, 5)
        .map((p) => `${JSON.stringify(p.identity)} (${said(p, '--identity')})`)
        .join(', ')}${policies.length > 5 ? ` or ${policies.length - 5} other trusted identities` : ''}.`,
      { identity: names, expected: policies.map((p) => p.identity) },
    );
  fail(
    'IDENTITY_MISMATCH',
    `model.sig's certificate was issued for an identity vouched for by ${JSON.stringify(issuer ?? null)}, not by ${sameName
      .map((p) => `${JSON.stringify(p.issuer)} (${said(p, '--issuer')})`)
      .join(', ')}.`,
    { issuer: issuer ?? null, expected: sameName.map((p) => p.issuer) },
  );
}
