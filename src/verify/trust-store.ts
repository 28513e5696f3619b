import { createPublicKey, type KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { TrustStoreError } from '../errors.js';
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

/**
 * The keys and pinned root certificates a server or `hotocr verify` trusts. Never the
 * system store: only what the operator named.
 */
export class TrustStore {
  readonly keys: readonly TrustedKey[];
  readonly roots: readonly TrustedRoot[];

  private constructor(keys: TrustedKey[], roots: TrustedRoot[]) {
    this.keys = keys;
    this.roots = roots;
  }

  /** Reads one PEM file, or every `*.pem|*.pub|*.crt|*.cer` file of a folder (not recursive). */
  static async load(path: string): Promise<TrustStore> {
    let files: string[];
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const names = (await readdir(path)).filter((n) => TRUST_FILE.test(n)).sort();
        files = names.map((n) => join(path, n));
        if (files.length === 0) {
          throw new TrustStoreError(`The trust folder ${path} holds no .pem, .pub, .crt or .cer file.`);
        }
      } else {
        files = [path];
      }
    } catch (cause) {
      if (cause instanceof TrustStoreError) throw cause;
      throw new TrustStoreError(`Cannot read the trust store at ${path}: ${(cause as Error).message}.`, {
        cause,
      });
    }
    const texts = await Promise.all(
      files.map(async (file) => ({ source: basename(file), text: await readFile(file, 'utf8') })),
    );
    return TrustStore.fromPem(texts);
  }

  /** Builds a store from PEM texts; `source` names each in error messages. */
  static fromPem(files: readonly { source: string; text: string }[]): TrustStore {
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
    return new TrustStore(keys, roots);
  }
}

function trustedKey(pem: string, source: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw new TrustStoreError(`${source}: the public key cannot be parsed (${(cause as Error).message}).`, {
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
    throw new TrustStoreError(`${source}: the certificate cannot be parsed (${(cause as Error).message}).`, {
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
  return { certificate, source };
}
