import { createPublicKey, type KeyObject } from 'node:crypto';
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

/** A key or pinned root as reports show it. */
export interface TrustEntry {
  /** A key trusted to sign, a pinned root, or a deny-list line. */
  readonly kind: 'key' | 'root' | 'deny';
  /** SHA-256 of the key (SubjectPublicKeyInfo) or of the root certificate (DER), hex. */
  readonly fingerprint: string;
  /** The trust-store file that holds it (`file:line` for a deny-list line). */
  readonly source: string;
  /** A root's subject. */
  readonly subject?: string;
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
 * The keys and pinned root certificates a server or `hotocr verify` trusts. Never the
 * system store: only what the operator named.
 */
export class TrustStore {
  readonly keys: readonly TrustedKey[];
  readonly roots: readonly TrustedRoot[];
  /** Certificates and keys refused wherever they appear, by SHA-256 fingerprint. */
  readonly denied: ReadonlyMap<string, DeniedEntry>;

  private constructor(keys: TrustedKey[], roots: TrustedRoot[], denied: readonly DeniedEntry[]) {
    this.keys = keys;
    this.roots = roots;
    this.denied = new Map(denied.map((d) => [d.fingerprint, d]));
  }

  /**
   * Reads one PEM file, or every `*.pem|*.pub|*.crt|*.cer` file of a folder (not recursive)
   * and its deny lists (`*.deny`).
   */
  static async load(path: string): Promise<TrustStore> {
    let files: string[];
    let denyFiles: string[] = [];
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const names = (await readdir(path)).sort();
        files = names.filter((n) => TRUST_FILE.test(n)).map((n) => join(path, n));
        denyFiles = names.filter((n) => DENY_FILE.test(n)).map((n) => join(path, n));
        if (files.length === 0) {
          throw new TrustStoreError(`The trust folder ${path} holds no .pem, .pub, .crt or .cer file.`);
        }
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
    const [texts, denyTexts] = await Promise.all([read(files), read(denyFiles)]);
    return TrustStore.fromPem(
      texts,
      denyTexts.flatMap(({ source, text }) => parseDenyList(source, text)),
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
    return [...keys, ...roots, ...denied];
  }

  /** The deny-list entry naming any of these fingerprints, if one does. */
  deniedAny(...fingerprints: string[]): DeniedEntry | undefined {
    for (const f of fingerprints) {
      const entry = this.denied.get(f);
      if (entry) return entry;
    }
    return undefined;
  }

  /** Builds a store from PEM texts (`source` names each in error messages) and deny-list entries. */
  static fromPem(
    files: readonly { source: string; text: string }[],
    denied: readonly DeniedEntry[] = [],
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
    return new TrustStore(keys, roots, denied);
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
