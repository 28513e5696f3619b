import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { messageOf, TrustStoreError } from '../errors.js';
import { type CertificateInfo, parseCertificate } from './certificate.js';
import { keyFingerprint } from './fingerprint.js';
import { algorithmOf, type SignatureAlgorithm } from './key-kind.js';
import { parsePem } from './pem.js';

/** A public key trusted to sign packages directly. */
export interface TrustedKey {
  readonly key: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  /** SHA-256 of the SubjectPublicKeyInfo, hex. */
  readonly fingerprint: string;
  /** The file it came from (base name), for messages. */
  readonly source: string;
  /** Trusted until then (a `Not-After:` line before its PEM block), for key rotation. */
  readonly notAfter?: Date;
}

/** One line of a deny list: a certificate or key no path or signature may use, whatever trusts it. */
export interface DeniedEntry {
  /** SHA-256 of a certificate (DER) or of a public key (SubjectPublicKeyInfo), lowercase hex. */
  readonly fingerprint: string;
  /** The file (base name) and line it was written on, for messages. */
  readonly source: string;
  readonly line: number;
  /** The text after the fingerprint on its line, if any (who, why). */
  readonly note?: string;
}

/**
 * A Sigstore identity trusted to sign models keyless (OpenSSF Model Signing): the signing
 * certificate must name `identity` and have been issued on `issuer`'s word, both exactly.
 */
export interface TrustedIdentity {
  /** An e-mail address, a URI or a Sigstore username, as the certificate names its subject. */
  readonly identity: string;
  /** The OIDC issuer's URL, as Fulcio records it in the certificate. */
  readonly issuer: string;
  /** The file (base name) and line it was written on, for messages. */
  readonly source: string;
  readonly line: number;
}

/** A key, pinned root, deny-list line or Sigstore identity as reports show it. */
export interface TrustEntry {
  /** A key trusted to sign, a pinned root, a deny-list line, or a Sigstore identity. */
  readonly kind: 'key' | 'root' | 'deny' | 'identity';
  /**
   * SHA-256 of the key (SubjectPublicKeyInfo) or of the root certificate (DER), hex; for an
   * identity, of its line as written in canonical form (`IDENTITY ISSUER`).
   */
  readonly fingerprint: string;
  /** The trust-store file that holds it (`file:line` for a deny-list line or an identity). */
  readonly source: string;
  /** A root's subject. */
  readonly subject?: string;
  /** An identity's subject name and OIDC issuer. */
  readonly identity?: string;
  readonly issuer?: string;
  /** When trusting it ends (ISO time), if it does. */
  readonly notAfter?: string;
}

/** A pinned CA certificate: packages carrying a certificate chain must end at one of these. */
export interface TrustedRoot {
  readonly certificate: CertificateInfo;
  readonly source: string;
  /** Pinned until then (a `Not-After:` line before its PEM block). */
  readonly notAfter?: Date;
}

const NOT_AFTER = /^[ \t]*Not-After:[ \t]*(\S+)[ \t]*$/im;

/** The `Not-After: <ISO 8601 time>` written in the text before a block, if any. */
function notAfterOf(before: string, source: string): { notAfter?: Date } {
  const match = NOT_AFTER.exec(before);
  if (!match) return {};
  const value = match[1]!;
  const time = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(time))
    throw new TrustStoreError(
      `${source}: "Not-After: ${value}" is not an ISO 8601 time (e.g. Not-After: 2027-03-31T00:00:00Z).`,
    );
  return { notAfter: new Date(time) };
}

const TRUST_FILE = /\.(pem|pub|crt|cer)$/i;
const DENY_FILE = /\.deny$/i;
const IDENTITY_FILE = /\.identities$/i;

/**
 * Reads a deny list: one SHA-256 fingerprint per line (64 hex digits, colons allowed, as
 * `openssl x509 -fingerprint -sha256` prints them), optionally followed by a note; `#` starts
 * a comment. Anything else is refused, so that a typo never leaves a signer trusted.
 */
export function parseDenyList(source: string, text: string): DeniedEntry[] {
  const entries: DeniedEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const match = /^(?:sha256 Fingerprint=)?([0-9A-Fa-f:]+)(?:\s+(.*))?$/.exec(line);
    const hex = match?.[1]?.replace(/:/g, '').toLowerCase() ?? '';
    if (!match || !/^[0-9a-f]{64}$/.test(hex))
      throw new TrustStoreError(
        `${source} line ${index + 1}: ${JSON.stringify(line.slice(0, 80))} is not a SHA-256 fingerprint (64 hex digits, colons allowed).`,
      );
    entries.push({
      fingerprint: hex,
      source,
      line: index + 1,
      ...(match[2] ? { note: match[2] } : {}),
    });
  });
  return entries;
}

/**
 * Reads a list of Sigstore identities: one per line, the identity (an e-mail address, a URI or
 * a username, as the signing certificate names it) then, after spaces, the OIDC issuer's URL;
 * both are compared exactly. A line starting with `#` is a comment. Anything else is refused,
 * so that a typo never trusts someone unintended, nor silently trusts no one.
 */
export function parseIdentityList(source: string, text: string): TrustedIdentity[] {
  const identities: TrustedIdentity[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fail = (why: string): never => {
      throw new TrustStoreError(
        `${source} line ${index + 1}: ${JSON.stringify(line.slice(0, 120))} ${why} (a line is IDENTITY ISSUER, e.g. release@example.com https://accounts.google.com).`,
      );
    };
    const fields = line.split(/\s+/);
    if (fields.length !== 2) fail(`has ${fields.length} field(s), not 2`);
    const [identity, issuer] = fields as [string, string];
    let url: URL | undefined;
    try {
      url = new URL(issuer);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:'))
      fail(`names an issuer that is not an http(s) URL: ${JSON.stringify(issuer)}`);
    identities.push({ identity, issuer, source, line: index + 1 });
  });
  return identities;
}

/**
 * The keys, pinned root certificates and Sigstore identities a server or `hotocr verify`
 * trusts. Never the system store: only what the operator named.
 */
export class TrustStore {
  readonly keys: readonly TrustedKey[];
  readonly roots: readonly TrustedRoot[];
  /** Certificates and keys refused wherever they appear, by SHA-256 fingerprint. */
  readonly denied: ReadonlyMap<string, DeniedEntry>;
  /** Who may sign OMS models keyless (Sigstore), each an identity and an issuer matched exactly. */
  readonly identities: readonly TrustedIdentity[];

  private constructor(
    keys: TrustedKey[],
    roots: TrustedRoot[],
    denied: readonly DeniedEntry[],
    identities: readonly TrustedIdentity[],
  ) {
    this.keys = keys;
    this.roots = roots;
    this.denied = new Map(denied.map((d) => [d.fingerprint, d]));
    this.identities = identities;
  }

  /**
   * Reads one PEM file (or one `*.identities` list), or every `*.pem|*.pub|*.crt|*.cer` file of
   * a folder (not recursive), its deny lists (`*.deny`) and its Sigstore identity lists
   * (`*.identities`).
   */
  static async load(path: string): Promise<TrustStore> {
    let files: string[] = [];
    let denyFiles: string[] = [];
    let identityFiles: string[] = [];
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const names = (await readdir(path)).sort();
        files = names.filter((n) => TRUST_FILE.test(n)).map((n) => join(path, n));
        denyFiles = names.filter((n) => DENY_FILE.test(n)).map((n) => join(path, n));
        identityFiles = names.filter((n) => IDENTITY_FILE.test(n)).map((n) => join(path, n));
        if (files.length === 0 && identityFiles.length === 0) {
          throw new TrustStoreError(
            `The trust folder ${path} holds no .pem, .pub, .crt, .cer or .identities file.`,
          );
        }
      } else if (IDENTITY_FILE.test(path)) {
        identityFiles = [path];
      } else {
        files = [path];
      }
    } catch (cause) {
      if (cause instanceof TrustStoreError) throw cause;
      throw new TrustStoreError(`Cannot read the trust store at ${path}: ${messageOf(cause)}.`, {
        cause,
      });
    }
    const read = (list: string[]) =>
      Promise.all(list.map(async (file) => ({ source: basename(file), text: await readFile(file, 'utf8') })));
    const [texts, denyTexts, identityTexts] = await Promise.all([
      read(files),
      read(denyFiles),
      read(identityFiles),
    ]);
    return TrustStore.fromPem(
      texts,
      denyTexts.flatMap(({ source, text }) => parseDenyList(source, text)),
      identityTexts.flatMap(({ source, text }) => parseIdentityList(source, text)),
    );
  }

  /**
   * Every key and pinned root, with when the trust in it ends: its `Not-After`, or for a
   * root the end of its certificate's validity if that comes first. What the expiry gauges,
   * `GET /v1/models` and a reload's report of what changed show.
   */
  entries(): TrustEntry[] {
    const keys: TrustEntry[] = this.keys.map((k) => ({
      kind: 'key',
      fingerprint: k.fingerprint,
      source: k.source,
      ...(k.notAfter ? { notAfter: k.notAfter.toISOString() } : {}),
    }));
    const roots: TrustEntry[] = this.roots.map((r) => {
      const ends = r.notAfter && r.notAfter < r.certificate.notAfter ? r.notAfter : r.certificate.notAfter;
      return {
        kind: 'root',
        fingerprint: r.certificate.fingerprint,
        source: r.source,
        subject: r.certificate.subject,
        notAfter: ends.toISOString(),
      };
    });
    const denied: TrustEntry[] = [...this.denied.values()].map((d) => ({
      kind: 'deny',
      fingerprint: d.fingerprint,
      source: `${d.source}:${d.line}`,
    }));
    const identities: TrustEntry[] = this.identities.map((i) => ({
      kind: 'identity',
      fingerprint: createHash('sha256').update(`${i.identity} ${i.issuer}`).digest('hex'),
      source: `${i.source}:${i.line}`,
      identity: i.identity,
      issuer: i.issuer,
    }));
    return [...keys, ...roots, ...denied, ...identities];
  }

  /** The deny-list entry naming any of these fingerprints, if one does. */
  deniedAny(...fingerprints: string[]): DeniedEntry | undefined {
    for (const f of fingerprints) {
      const entry = this.denied.get(f);
      if (entry) return entry;
    }
    return undefined;
  }

  /**
   * Builds a store from PEM texts (`source` names each in error messages), deny-list entries
   * and Sigstore identities.
   */
  static fromPem(
    files: readonly { source: string; text: string }[],
    denied: readonly DeniedEntry[] = [],
    identities: readonly TrustedIdentity[] = [],
  ): TrustStore {
    const keys: TrustedKey[] = [];
    const roots: TrustedRoot[] = [];
    for (const { source, text } of files) {
      const blocks = parsePem(text);
      if (blocks.length === 0)
        throw new TrustStoreError(`${source} holds no PEM block (PUBLIC KEY or CERTIFICATE).`);
      for (const block of blocks) {
        if (block.type.includes('PRIVATE KEY')) {
          throw new TrustStoreError(
            `${source} holds a private key. The trust store takes public keys and CA certificates only; keep private keys with the signer.`,
          );
        }
        if (block.type === 'PUBLIC KEY' || block.type === 'RSA PUBLIC KEY') {
          keys.push({ ...trustedKey(block.text, source), ...notAfterOf(block.before, source) });
        } else if (block.type === 'CERTIFICATE') {
          roots.push({ ...trustedRoot(block.der, source), ...notAfterOf(block.before, source) });
        } else {
          throw new TrustStoreError(
            `${source} holds a "${block.type}" block; expected PUBLIC KEY or CERTIFICATE.`,
          );
        }
      }
    }
    return new TrustStore(keys, roots, denied, identities);
  }
}

/** Names a deny-list entry in a sentence. */
export function describeDenied(entry: DeniedEntry): string {
  return `${entry.source} line ${entry.line}${entry.note ? ` (${entry.note})` : ''}`;
}

function trustedKey(pem: string, source: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new TrustStoreError(`${source}: the public key cannot be parsed (${messageOf(cause)}).`, {
      cause,
    });
  }
  const algorithm = algorithmOf(key);
  if (typeof algorithm !== 'string') throw new TrustStoreError(`${source}: ${algorithm.unsupported}.`);
  return { key, algorithm, fingerprint: keyFingerprint(key), source };
}

function trustedRoot(der: Buffer, source: string): TrustedRoot {
  let certificate: CertificateInfo;
  try {
    certificate = parseCertificate(der);
  } catch (cause) {
    throw new TrustStoreError(`${source}: the certificate cannot be parsed (${messageOf(cause)}).`, {
      cause,
    });
  }
  if (!certificate.isCA) {
    throw new TrustStoreError(
      `${source}: ${certificate.subject} is not a CA certificate (basicConstraints CA:TRUE); pin a root, or trust the signer's public key instead.`,
    );
  }
  if (certificate.keyUsage && !certificate.keyUsage.keyCertSign) {
    throw new TrustStoreError(
      `${source}: ${certificate.subject} may not sign certificates (keyUsage lacks keyCertSign).`,
    );
  }
  if (certificate.weakness)
    throw new TrustStoreError(
      `${source}: the root ${certificate.subject} cannot be pinned: ${certificate.weakness}.`,
    );
  return { certificate, source };
}
