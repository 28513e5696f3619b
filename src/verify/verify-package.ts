import { createHash, createVerify, constants as cryptoConstants, type KeyObject, verify } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import semver from 'semver';
import { messageOf, PackageRejectedError, type RejectionCode } from '../errors.js';
import {
  type ArchiveLimits,
  CHECKSUM_FILE,
  DEFAULT_LIMITS,
  MANIFEST_FILE,
  type Manifest,
  OMS_SIGNATURE_FILE,
  PackageArchive,
  parseChecksumFile,
  parseManifest,
  referencedFiles,
  SIGNATURE_FILE,
  SIGNER_FILE,
  UNLISTED_ENTRIES,
} from '../package/index.js';
import { verifyChain } from './cert-chain.js';
import { hashDescriptor, hashFile } from './hash-thread.js';
import { algorithmsOf, digestOf, type SignatureAlgorithm } from './key-kind.js';
import { verifyOmsArchive } from './oms-package.js';
import type { OmsSigner } from './oms-signer.js';
import type { SigstoreTrustedRoot } from './oms-trusted-root.js';
import { explainRsaFailure, isDerEcdsaSignature, verifyWithKey } from './signature.js';
import { describeDenied, type TrustedKey, type TrustStore } from './trust-store.js';

type OmsFlavour<K extends OmsSigner['kind'], As extends string> = { kind: As } & Omit<
  Extract<OmsSigner, { kind: K }>,
  'kind'
>;

/**
 * Who signed a package that verified: a trusted key or a certificate over checksum.sha256, or,
 * for a ZIP signed with OpenSSF Model Signing, its key, certificate or Sigstore identity.
 */
export type SignerInfo =
  | OmsFlavour<'key', 'oms-key'>
  | OmsFlavour<'certificate', 'oms-certificate'>
  | OmsFlavour<'keyless', 'oms-sigstore'>
  | {
      kind: 'key';
      algorithm: SignatureAlgorithm;
      fingerprint: string;
      /** The trust-store file that holds the key. */
      source: string;
      /** Until when the trust store trusts it, if it says. */
      notAfter?: string;
    }
  | {
      kind: 'certificate';
      algorithm: SignatureAlgorithm;
      /** SHA-256 of the signer certificate (DER), hex. */
      fingerprint: string;
      subject: string;
      root: string;
      notAfter: string;
    };

export interface VerifyOptions {
  readonly trust: TrustStore;
  /** The time the trust store's `Not-After` lines are judged at (default: now). */
  readonly now?: Date;
  /**
   * The time certificate validity periods and the manifest's `expires` are judged at (default:
   * `now`): a restart checks a version accepted earlier at the time it was accepted.
   */
  readonly validAt?: Date;
  /** Accept seed-style packages whose signature covers `model.onnx` alone. */
  readonly allowLegacySignatures?: boolean;
  readonly limits?: ArchiveLimits;
  /**
   * Keep each hashed entry's bytes for loading (off for `hotocr verify`, which then streams in
   * flat memory), or those of the entries a function picks, given each entry's name and signed
   * SHA-256 and the package's manifest (verified before any other entry is read). The manifest
   * is kept whenever any entry's bytes may be.
   */
  readonly keepBytes?: boolean | ((entry: VerifiedEntryRef, manifest: Manifest) => boolean);
  /**
   * The highest version ever activated for the package's model name (or, given the name, a
   * function that tells it), whatever channel brought it; lower versions are downgrades.
   */
  readonly highestActivated?: string | ((name: string) => string | undefined);
  /** Accept a version lower than `highestActivated` (an operator's explicit request). */
  readonly allowDowngrade?: boolean;
  /**
   * Read and hash the package at this nice value (a lower scheduling priority), on the
   * hashing thread, so that a package verified while another version serves leaves the
   * cores to serving. Lowering needs no privilege; the thread takes its priority back after.
   */
  readonly nice?: number;
  /**
   * Time allowed for the trust stage (certificate chain and signature over the checksum list),
   * in ms; past it the package is refused with VERIFY_TIMEOUT. Default {@link DEFAULT_TRUST_BUDGET_MS}.
   */
  readonly trustBudgetMs?: number;
  /** A monotonic clock in ms (default `performance.now`), what the budget is measured with. */
  readonly clock?: () => number;
  /**
   * Stops the verification: it ends at its next step, or within one read of the hashing
   * thread, throwing the signal's reason, with the archive closed.
   */
  readonly signal?: AbortSignal;
  /**
   * The Sigstore trusted root a keyless OMS signature is checked against (default: the
   * public-good one embedded in @sigstore/tuf).
   */
  readonly sigstoreTrustedRoot?: SigstoreTrustedRoot;
}

/** The default time allowed for the trust stage: a linear chain of at most five certificates takes milliseconds. */
export const DEFAULT_TRUST_BUDGET_MS = 2000;

/** An entry as its signed checksum file lists it. */
export interface VerifiedEntryRef {
  readonly name: string;
  readonly sha256: string;
}

export interface VerifiedEntry {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** A package every check of SPEC section 2 (but loading) passed. */
export interface VerifiedPackage {
  readonly path: string;
  /** SHA-256 of the whole archive, hex: the package's identity. */
  readonly sha256: string;
  readonly size: number;
  readonly manifest: Manifest;
  readonly signer: SignerInfo;
  readonly entries: readonly VerifiedEntry[];
  /** The verified bytes of every entry `keepBytes` asked for; these, and only these, are loaded. */
  readonly files: ReadonlyMap<string, Buffer>;
  /** Set when a seed-style package was accepted under `allowLegacySignatures`: what its signature leaves unprotected. */
  readonly legacy?: { readonly unprotected: readonly string[] };
}

function fail(code: RejectionCode, message: string, details: Record<string, unknown> = {}): never {
  throw new PackageRejectedError(code, message, { details });
}

/** Hashes an entry's stream (keeping its bytes when asked); a corrupt entry is ARCHIVE_INVALID. */
export async function hashStream(
  stream: Readable,
  name: string,
  keep: boolean,
  signal: AbortSignal | undefined,
): Promise<{ sha256: string; bytes?: Buffer; size: number }> {
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      if (signal?.aborted) {
        stream.destroy();
        signal.throwIfAborted();
      }
      hash.update(chunk as Buffer);
      if (keep) kept.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (cause) {
    if (signal?.aborted && cause === signal.reason) throw cause;
    throw new PackageRejectedError(
      'ARCHIVE_INVALID',
      `Entry ${JSON.stringify(name)} is corrupt (${messageOf(cause)}).`,
      {
        cause,
        details: { entry: name },
      },
    );
  }
  return { sha256: hash.digest('hex'), size, ...(keep ? { bytes: Buffer.concat(kept) } : {}) };
}

/** The SHA-256 of each entry by name, computed from the very bytes verified: a loader's `digests`. */
export function entryDigests(pkg: Pick<VerifiedPackage, 'entries'>): Map<string, string> {
  return new Map(pkg.entries.map((e) => [e.name, e.sha256]));
}

/**
 * Runs the checks of SPEC section 2, steps 1 to 5, in order (but for step 5 before step 4
 * when `keepBytes` is a function, which needs the manifest), on the package at `path`, and
 * returns what was verified. The first failure throws a {@link PackageRejectedError} whose
 * details carry the package's path (and hash, when the archive could be hashed). Nothing is
 * written to disk.
 */
export async function verifyPackage(path: string, options: VerifyOptions): Promise<VerifiedPackage> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  options.signal?.throwIfAborted();
  let archive: PackageArchive;
  try {
    archive = await PackageArchive.open(path, limits);
  } catch (error) {
    if (error instanceof PackageRejectedError) {
      // Best effort, for the report: the hash of what was refused, unless it is too large to
      // read or not a regular file (reading a FIFO would wait for a writer forever).
      const size = await stat(path).then(
        (s) => (s.isFile() ? s.size : Number.POSITIVE_INFINITY),
        () => Number.POSITIVE_INFINITY,
      );
      const sha256 =
        size <= limits.maxArchiveBytes && !options.signal?.aborted
          ? await hashFile(path, options.nice).catch(() => undefined)
          : undefined;
      Object.assign(error.details, { path, ...(sha256 ? { sha256 } : {}) });
    }
    throw error;
  }
  let sha256: string | undefined;
  const hashed = (hash: string) => {
    sha256 = hash;
  };
  try {
    // A ZIP signed with OpenSSF Model Signing carries model.sig in place of the two files.
    if (archive.has(OMS_SIGNATURE_FILE) && !archive.has(CHECKSUM_FILE) && !archive.has(SIGNATURE_FILE))
      return await verifyOmsArchive(archive, path, options, hashed);
    return await verifyOpened(archive, path, options, hashed);
  } catch (error) {
    if (error instanceof PackageRejectedError) {
      // Refused before its bytes were read (a signature no trusted key made): the archive's
      // hash alone, for the report, through the same descriptor.
      sha256 ??= await wholeHash(archive, options.nice, options.signal).catch(() => undefined);
      Object.assign(error.details, { path, ...(sha256 ? { sha256 } : {}) });
    }
    throw error;
  } finally {
    await archive.close();
  }
}

interface OnePass {
  /** SHA-256 of the archive file. */
  readonly sha256: string;
  /** Digest (and, when kept, bytes) of every stored entry, from the same read. */
  readonly stored: ReadonlyMap<string, { sha256: string; bytes?: Buffer; size: number }>;
}

/**
 * Reads the archive once, on the hashing thread and through the archive's own descriptor:
 * the file's own hash and the hash of every stored entry come from the same bytes (graphs
 * are stored, so this is nearly all of a package), and the kept bytes are moved here.
 * Deflated entries are hashed in step 4 from their inflated stream.
 */
async function hashInOnePass(
  archive: PackageArchive,
  keep: (name: string) => boolean,
  nice: number | undefined,
  signal: AbortSignal | undefined,
): Promise<OnePass> {
  const ranges = archive.entries
    .filter((e) => !UNLISTED_ENTRIES.has(e.name) && archive.isStored(e.name))
    .map((e) => ({ name: e.name, ...archive.storedRange(e.name), keep: keep(e.name) }));
  const pass = await hashDescriptor(archive.descriptor, archive.size, ranges, nice, signal);
  return { sha256: pass.sha256, stored: new Map(pass.ranges.map(({ name, ...r }) => [name, r])) };
}

/** SHA-256 of the whole archive, read on the hashing thread through its descriptor. */
async function wholeHash(
  archive: PackageArchive,
  nice: number | undefined,
  signal?: AbortSignal,
): Promise<string> {
  return (await hashDescriptor(archive.descriptor, archive.size, [], nice, signal)).sha256;
}

/**
 * The trust stage's clock: `check()` refuses the package with VERIFY_TIMEOUT once the budget is
 * spent, and stops it when the signal fires. Called between certificates and between keys.
 */
export function trustDeadline(
  options: Pick<VerifyOptions, 'clock' | 'trustBudgetMs' | 'signal'>,
  thing = 'package',
): () => void {
  const clock = options.clock ?? (() => performance.now());
  const budget = options.trustBudgetMs ?? DEFAULT_TRUST_BUDGET_MS;
  const started = clock();
  return () => {
    options.signal?.throwIfAborted();
    const spent = clock() - started;
    if (spent > budget)
      fail(
        'VERIFY_TIMEOUT',
        `Checking the ${thing}'s certificate chain and signature took over ${budget} ms (--verify-timeout-ms); it was refused rather than left to hold up every package behind it.`,
        { budgetMs: budget, spentMs: Math.round(spent) },
      );
  };
}

/**
 * Steps 2 to 5 on an opened archive. The signature is checked from the two small entries
 * before any other byte is read, so a package no trusted key signed is refused without its
 * graphs ever being read or held; `hashed` is told the archive's hash once it is known.
 */
async function verifyOpened(
  archive: PackageArchive,
  path: string,
  options: VerifyOptions,
  hashed: (sha256: string) => void,
): Promise<VerifiedPackage> {
  const now = options.now ?? new Date();
  const files = new Map<string, Buffer>();

  // Step 2: coverage.
  if (!archive.has(CHECKSUM_FILE)) {
    fail(
      'CHECKSUM_MISSING',
      `The package has no ${CHECKSUM_FILE}; it must list the SHA-256 of every file (sha256sum output).`,
    );
  }
  const checksumBytes = await archive.readSmall(CHECKSUM_FILE);
  const listed = parseChecksumFile(checksumBytes);
  if (!archive.has(SIGNATURE_FILE)) {
    fail(
      'SIGNATURE_MISSING',
      `The package has no ${SIGNATURE_FILE}; sign ${CHECKSUM_FILE} (see docs/PACKAGE-FORMAT.md).`,
    );
  }
  const signature = await archive.readSmall(SIGNATURE_FILE);
  options.signal?.throwIfAborted();

  if (isLegacyShape(listed)) {
    try {
      const legacy = await checkLegacy(archive, listed, signature, options, now);
      const sha256 = await wholeHash(archive, options.nice, options.signal);
      hashed(sha256);
      return await finishLegacy(archive, path, options, sha256, legacy, now);
    } catch (error) {
      // Counted apart: how many seed-style packages still arrive, and how they end.
      if (error instanceof PackageRejectedError) Object.assign(error.details, { legacy: true });
      throw error;
    }
  }

  for (const entry of archive.entries) {
    if (!UNLISTED_ENTRIES.has(entry.name) && !listed.has(entry.name)) {
      fail(
        'CHECKSUM_UNLISTED_ENTRY',
        `Entry ${JSON.stringify(entry.name)} is not listed in ${CHECKSUM_FILE}, so the signature does not cover it.`,
        {
          entry: entry.name,
        },
      );
    }
  }
  for (const name of listed.keys()) {
    if (UNLISTED_ENTRIES.has(name)) {
      fail(
        'CHECKSUM_INVALID',
        `${CHECKSUM_FILE} lists ${name}, which it must not (it cannot cover itself or the signature).`,
        { entry: name },
      );
    }
    if (!archive.has(name)) {
      fail(
        'CHECKSUM_MISSING_ENTRY',
        `${CHECKSUM_FILE} lists ${JSON.stringify(name)}, which is not in the package.`,
        { entry: name },
      );
    }
  }

  // Step 3: signature over checksum.sha256, within the trust stage's time budget.
  const signer = await checkSignature(archive, checksumBytes, signature, options, now);
  options.signal?.throwIfAborted();

  const mismatch = (name: string, expected: string, actual: string): never =>
    fail(
      'CHECKSUM_MISMATCH',
      `Entry ${JSON.stringify(name)} does not match its SHA-256 in ${CHECKSUM_FILE}: it was changed after signing.`,
      { entry: name, expected, actual },
    );

  // Step 5, first when the entries to keep depend on it: manifest, expiry, version policy,
  // from its own bytes checked against the signed list.
  const choose = typeof options.keepBytes === 'function' ? options.keepBytes : undefined;
  const manifestFirst = async (): Promise<Manifest> => {
    const expected = listed.get(MANIFEST_FILE);
    const bytes = expected === undefined ? undefined : await archive.readSmall(MANIFEST_FILE);
    if (bytes && expected) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== expected) mismatch(MANIFEST_FILE, expected, actual);
    }
    return checkManifest(archive, bytes, options.validAt ?? now, options);
  };
  const early = choose && (await manifestFirst());
  const keep = (name: string): boolean =>
    name === MANIFEST_FILE ||
    options.keepBytes === true ||
    (choose !== undefined && early !== undefined && choose({ name, sha256: listed.get(name)! }, early));

  // Step 4: hash of every entry (and of the archive), in one pass over the file.
  const pass = await hashInOnePass(archive, keep, options.nice, options.signal);
  hashed(pass.sha256);
  const entries: VerifiedEntry[] = [];
  for (const [name, expected] of listed) {
    options.signal?.throwIfAborted();
    const got =
      pass.stored.get(name) ??
      (await hashStream(await archive.openStream(name), name, keep(name), options.signal));
    if (got.sha256 !== expected) mismatch(name, expected, got.sha256);
    if (got.bytes) files.set(name, got.bytes);
    entries.push({ name, size: got.size, sha256: got.sha256 });
  }

  // Step 5: manifest, expiry, version policy.
  const manifest = early ?? checkManifest(archive, files.get(MANIFEST_FILE), options.validAt ?? now, options);
  if (!options.keepBytes) files.delete(MANIFEST_FILE);
  return { path, sha256: pass.sha256, size: archive.size, manifest, signer, entries, files };
}

async function checkSignature(
  archive: PackageArchive,
  signed: Buffer,
  signature: Buffer,
  options: VerifyOptions,
  now: Date,
): Promise<SignerInfo> {
  const trust = options.trust;
  if (signature.length === 0) fail('SIGNATURE_INVALID', `${SIGNATURE_FILE} is empty.`);
  if (archive.has(SIGNER_FILE) && trust.roots.length > 0) {
    const pem = await archive.readSmall(SIGNER_FILE);
    // Started once signer.pem is read: the budget is for checking, not for reading the archive.
    const checkpoint = trustDeadline(options);
    const chain = verifyChain(pem, trust.roots, {
      now: options.validAt ?? now,
      denied: (...fingerprints) => trust.deniedAny(...fingerprints),
      checkpoint,
    });
    checkStillTrusted(chain.root, `root ${chain.root.source}`, now);
    const key = chain.leaf.node.publicKey;
    const schemes = algorithmsOf(key);
    if (!Array.isArray(schemes)) {
      fail(
        'KEY_UNTRUSTED',
        `The signer certificate ${chain.leaf.subject} holds an unsupported key: ${(schemes as { unsupported: string }).unsupported}.`,
      );
    }
    const algorithm = verifyWithKey(key, signed, signature);
    checkpoint();
    if (!algorithm) {
      fail(
        'SIGNATURE_INVALID',
        `${SIGNATURE_FILE} does not verify over ${CHECKSUM_FILE} with the key of ${chain.leaf.subject}: the package was changed after signing, or signed with another key.`,
        {
          subject: chain.leaf.subject,
        },
      );
    }
    return {
      kind: 'certificate',
      algorithm,
      fingerprint: chain.leaf.fingerprint,
      subject: chain.leaf.subject,
      root: chain.root.certificate.subject,
      notAfter: chain.leaf.notAfter.toISOString(),
    };
  }
  const found = findSigningKey(trust.keys, signed, signature, trustDeadline(options));
  if (found) {
    const { key, algorithm } = found;
    checkKeyAllowed(trust, key, now);
    return {
      kind: 'key',
      algorithm,
      fingerprint: key.fingerprint,
      source: key.source,
      ...(key.notAfter ? { notAfter: key.notAfter.toISOString() } : {}),
    };
  }
  if (trust.keys.length === 0) {
    fail(
      'KEY_UNTRUSTED',
      archive.has(SIGNER_FILE)
        ? 'The package is signed with a certificate, but no root certificate is pinned in the trust store.'
        : 'The trust store holds no public key, and the package carries no signer certificate.',
    );
  }
  explainSignatureFailure(trust.keys, signature);
}

/** Refuses a key or root whose `Not-After` in the trust store has passed (it was rotated out). */
export function checkStillTrusted(
  entry: { notAfter?: Date },
  what: string,
  now: Date,
  thing = 'package',
): void {
  if (entry.notAfter && now.getTime() > entry.notAfter.getTime())
    fail(
      'KEY_UNTRUSTED',
      `The ${thing} is signed by trusted ${what}, which the trust store trusts only until ${entry.notAfter.toISOString()}: re-sign it with the current key.`,
      { notAfter: entry.notAfter.toISOString() },
    );
}

/** A trusted key that made a signature may still be rotated out (`Not-After`) or denied. */
export function checkKeyAllowed(trust: TrustStore, key: TrustedKey, now: Date, thing = 'package'): void {
  const denied = trust.deniedAny(key.fingerprint);
  if (denied)
    fail(
      'KEY_UNTRUSTED',
      `The ${thing} is signed by trusted key ${key.source}, which is on the deny list (${describeDenied(denied)}).`,
      { key: key.fingerprint, deniedBy: `${denied.source}:${denied.line}` },
    );
  checkStillTrusted(key, `key ${key.source}`, now, thing);
}

function findSigningKey(
  keys: readonly TrustedKey[],
  data: Buffer,
  signature: Buffer,
  checkpoint: () => void,
): { key: TrustedKey; algorithm: SignatureAlgorithm } | undefined {
  for (const key of keys) {
    checkpoint();
    const algorithm = verifyWithKey(key.key, data, signature);
    if (algorithm) return { key, algorithm };
  }
  checkpoint();
  return undefined;
}

/** Words the refusal of a signature no trusted key accepts as precisely as the bytes allow. */
function explainSignatureFailure(keys: readonly TrustedKey[], signature: Buffer): never {
  const trusted = `${keys.length} trusted key(s)`;
  for (const k of keys.filter((k) => k.algorithm === 'rsa-pss-sha256')) {
    const why = explainRsaFailure(k.key, signature);
    if (why === 'pkcs1-v1.5') {
      fail(
        'SIGNATURE_INVALID',
        `${SIGNATURE_FILE} uses RSA PKCS#1 v1.5 padding; hotocr accepts RSA-PSS only (openssl dgst -sigopt rsa_padding_mode:pss).`,
        {
          key: k.fingerprint,
        },
      );
    }
    if (why === 'pss-other-data') {
      fail(
        'SIGNATURE_INVALID',
        `${SIGNATURE_FILE} was made by trusted key ${k.source} over different bytes: ${CHECKSUM_FILE} was changed after signing.`,
        {
          key: k.fingerprint,
        },
      );
    }
  }
  const rsaSizes = new Set([256, 384, 512]);
  const complete =
    rsaSizes.has(signature.length) || isDerEcdsaSignature(signature) || signature.length === 64;
  const sameShape = keys.some((k) =>
    k.algorithm === 'rsa-pss-sha256'
      ? Math.ceil((k.key.asymmetricKeyDetails?.modulusLength ?? 0) / 8) === signature.length
      : k.algorithm === 'ed25519'
        ? signature.length === 64
        : isDerEcdsaSignature(signature),
  );
  if (!complete) {
    fail(
      'SIGNATURE_INVALID',
      `${SIGNATURE_FILE} (${signature.length} bytes) is not a complete RSA, ECDSA or Ed25519 signature: it is truncated or damaged.`,
    );
  }
  if (!sameShape || keys.every((k) => k.algorithm === 'rsa-pss-sha256')) {
    fail(
      'KEY_UNTRUSTED',
      `${SIGNATURE_FILE} was not made by any of the ${trusted}: the package was signed with a key this server does not trust (or the signature is damaged).`,
      {
        trusted: keys.map((k) => k.fingerprint),
      },
    );
  }
  fail(
    'SIGNATURE_INVALID',
    `${SIGNATURE_FILE} does not verify over ${CHECKSUM_FILE} with any of the ${trusted}: the package was changed after signing, or signed by a key that is not trusted.`,
    {
      trusted: keys.map((k) => k.fingerprint),
    },
  );
}

/** Step 5: the manifest's schema, the files it names, `expires`, and the version policy. */
export function checkManifest(
  archive: PackageArchive,
  bytes: Buffer | undefined,
  now: Date,
  options: Pick<VerifyOptions, 'highestActivated' | 'allowDowngrade'>,
): Manifest {
  if (!bytes) fail('CONFIG_INVALID', `The package has no ${MANIFEST_FILE}.`);
  const manifest = parseManifest(bytes);
  for (const name of referencedFiles(manifest)) {
    if (!archive.has(name))
      fail('CONFIG_INVALID', `${MANIFEST_FILE} names ${JSON.stringify(name)}, which is not in the package.`, {
        entry: name,
      });
  }
  if (manifest.expires && Date.parse(manifest.expires) <= now.getTime()) {
    fail(
      'PACKAGE_EXPIRED',
      `${manifest.name} ${manifest.version} expired at ${manifest.expires}; publish a new package.`,
      {
        expires: manifest.expires,
      },
    );
  }
  const highest =
    typeof options.highestActivated === 'function'
      ? options.highestActivated(manifest.name)
      : options.highestActivated;
  if (highest && !options.allowDowngrade && semver.lt(manifest.version, highest)) {
    fail(
      'VERSION_DOWNGRADE',
      `${manifest.name} ${manifest.version} is lower than ${highest}, already activated; a model moves back only by an operator's act (rollback, activate, or an upload with allowDowngrade=true).`,
      { version: manifest.version, highest },
    );
  }
  return manifest;
}

const LEGACY_MODEL = 'model.onnx';

/**
 * A seed-style package: its checksum list names `model.onnx` alone, and its signature is over
 * `model.onnx` itself. No package of the current format has that shape (it must list
 * config.json), so the shape alone decides, before any byte of the model is read.
 */
function isLegacyShape(listed: ReadonlyMap<string, string>): boolean {
  return listed.size === 1 && listed.has(LEGACY_MODEL);
}

interface LegacyMatch {
  readonly key: TrustedKey;
  readonly algorithm: SignatureAlgorithm;
  readonly size: number;
  readonly sha256: string;
}

function legacyFail(code: RejectionCode, message: string, details: Record<string, unknown> = {}): never {
  fail(code, message, { ...details, legacy: true });
}

/** Whether `signature` has the length or encoding a signature of this scheme and key has. */
function couldBe(key: TrustedKey, algorithm: SignatureAlgorithm, signature: Buffer): boolean {
  if (algorithm === 'ed25519') return signature.length === 64;
  if (algorithm === 'rsa-pss-sha256')
    return signature.length === Math.ceil((key.key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  return isDerEcdsaSignature(signature);
}

/** A verifier fed the model's bytes as they stream, for one trusted key and one scheme. */
interface StreamingCheck {
  readonly key: TrustedKey;
  readonly algorithm: SignatureAlgorithm;
  update(chunk: Buffer): void;
  verify(whole: () => Buffer): boolean;
}

function streamingCheck(key: TrustedKey, algorithm: SignatureAlgorithm, signature: Buffer): StreamingCheck {
  if (algorithm === 'ed25519') {
    // Ed25519 signs the message itself, not a digest: its check needs the whole model.
    return {
      key,
      algorithm,
      update() {},
      verify: (whole) => {
        try {
          return verify(null, whole(), key.key, signature);
        } catch {
          return false;
        }
      },
    };
  }
  const verifier = createVerify(digestOf(algorithm)!);
  const options: { key: KeyObject; padding?: number; saltLength?: number; dsaEncoding?: 'der' } =
    algorithm === 'rsa-pss-sha256'
      ? {
          key: key.key,
          padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
          saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
        }
      : { key: key.key, dsaEncoding: 'der' };
  return {
    key,
    algorithm,
    update: (chunk) => verifier.update(chunk),
    verify: () => {
      try {
        return verifier.verify(options, signature);
      } catch {
        return false;
      }
    },
  };
}

/**
 * Refuses a seed-style package unless the operator opted in; with the opt-in, streams
 * `model.onnx` once through a verifier per trusted key and its SHA-256 (holding it only when
 * an Ed25519 key is trusted, whose check needs the whole message), under the archive limits.
 * A key's `Not-After` and the deny list apply as to any signature.
 */
async function checkLegacy(
  archive: PackageArchive,
  listed: ReadonlyMap<string, string>,
  signature: Buffer,
  options: VerifyOptions,
  now: Date,
): Promise<LegacyMatch> {
  if (!options.allowLegacySignatures) {
    legacyFail(
      'LEGACY_SIGNATURE_REFUSED',
      `${CHECKSUM_FILE} lists ${LEGACY_MODEL} alone: a seed-style package, whose signature covers ${LEGACY_MODEL} and leaves config.json and every other file unprotected. Re-sign ${CHECKSUM_FILE} listing every file (hotocr pack), or start with --allow-legacy-signatures.`,
    );
  }
  if (!archive.has(LEGACY_MODEL))
    legacyFail(
      'CHECKSUM_MISSING_ENTRY',
      `${CHECKSUM_FILE} lists ${LEGACY_MODEL}, which is not in the package.`,
      {
        entry: LEGACY_MODEL,
      },
    );
  if (signature.length === 0) legacyFail('SIGNATURE_INVALID', `${SIGNATURE_FILE} is empty.`);
  const keys = options.trust.keys;
  if (keys.length === 0)
    legacyFail('KEY_UNTRUSTED', 'The trust store holds no public key to check a seed-style signature with.');
  // Only schemes whose signatures have this one's shape: an Ed25519 check holds the whole
  // model, so it runs only for a 64-byte signature.
  const checks = keys.flatMap((key) => {
    const schemes = algorithmsOf(key.key);
    return Array.isArray(schemes)
      ? (schemes as readonly SignatureAlgorithm[])
          .filter((a) => couldBe(key, a, signature))
          .map((a) => streamingCheck(key, a, signature))
      : [];
  });
  const holdWhole = checks.some((c) => c.algorithm === 'ed25519');
  const hash = createHash('sha256');
  const held: Buffer[] = [];
  let size = 0;
  // A stored model (as seed-style packages are made) is read into one reused buffer, so that
  // memory stays flat; a deflated one streams through the inflater.
  const stored = archive.isStored(LEGACY_MODEL);
  const stream = stored ? undefined : await archive.openStream(LEGACY_MODEL);
  try {
    for await (const chunk of stream ?? archive.readStored(LEGACY_MODEL)) {
      if (options.signal?.aborted) {
        stream?.destroy();
        options.signal.throwIfAborted();
      }
      const bytes = chunk as Buffer;
      hash.update(bytes);
      for (const c of checks) c.update(bytes);
      if (holdWhole) held.push(stored ? Buffer.from(bytes) : bytes);
      size += bytes.length;
    }
  } catch (cause) {
    if (options.signal?.aborted && cause === options.signal.reason) throw cause;
    if (cause instanceof PackageRejectedError) throw cause;
    legacyFail('ARCHIVE_INVALID', `Entry "${LEGACY_MODEL}" is corrupt (${messageOf(cause)}).`, {
      entry: LEGACY_MODEL,
    });
  }
  const sha256 = hash.digest('hex');
  let whole: Buffer | undefined;
  const match = checks.find((c) => c.verify(() => (whole ??= Buffer.concat(held))));
  held.length = 0;
  if (!match)
    legacyFail(
      'KEY_UNTRUSTED',
      `${SIGNATURE_FILE} of this seed-style package does not verify over ${LEGACY_MODEL} with any of the ${keys.length} trusted key(s).`,
      { trusted: keys.map((k) => k.fingerprint) },
    );
  if (sha256 !== listed.get(LEGACY_MODEL))
    legacyFail(
      'CHECKSUM_MISMATCH',
      `Entry "${LEGACY_MODEL}" does not match its SHA-256 in ${CHECKSUM_FILE}.`,
      {
        entry: LEGACY_MODEL,
      },
    );
  try {
    checkKeyAllowed(options.trust, match.key, now);
  } catch (error) {
    if (error instanceof PackageRejectedError) Object.assign(error.details, { legacy: true });
    throw error;
  }
  return { key: match.key, algorithm: match.algorithm, size, sha256 };
}

/**
 * Finishes a seed-style package whose signature verified: reads what it leaves unprotected
 * and, when the bytes are to be kept, reads `model.onnx` once more and keeps it only if it is
 * still the very bytes that verified.
 */
async function finishLegacy(
  archive: PackageArchive,
  path: string,
  options: VerifyOptions,
  archiveHash: string,
  legacy: LegacyMatch,
  now: Date,
): Promise<VerifiedPackage> {
  const files = new Map<string, Buffer>();
  const entries: VerifiedEntry[] = [{ name: LEGACY_MODEL, size: legacy.size, sha256: legacy.sha256 }];
  if (options.keepBytes) {
    const again = await hashStream(
      await archive.openStream(LEGACY_MODEL),
      LEGACY_MODEL,
      true,
      options.signal,
    );
    if (again.sha256 !== legacy.sha256)
      legacyFail('ARCHIVE_INVALID', `Entry "${LEGACY_MODEL}" changed while it was being verified.`, {
        entry: LEGACY_MODEL,
      });
    files.set(LEGACY_MODEL, again.bytes!);
  }
  const unprotected: string[] = [];
  let manifestBytes: Buffer | undefined;
  for (const entry of archive.entries) {
    if (UNLISTED_ENTRIES.has(entry.name) || entry.name === LEGACY_MODEL) continue;
    unprotected.push(entry.name);
    const got = await hashStream(await archive.openStream(entry.name), entry.name, true, options.signal);
    if (entry.name === MANIFEST_FILE) manifestBytes = got.bytes;
    if (options.keepBytes) files.set(entry.name, got.bytes!);
    entries.push({ name: entry.name, size: got.size, sha256: got.sha256 });
  }
  const manifest = checkManifest(archive, manifestBytes, options.validAt ?? now, options);
  return {
    path,
    sha256: archiveHash,
    size: archive.size,
    manifest,
    signer: {
      kind: 'key',
      algorithm: legacy.algorithm,
      fingerprint: legacy.key.fingerprint,
      source: legacy.key.source,
      ...(legacy.key.notAfter ? { notAfter: legacy.key.notAfter.toISOString() } : {}),
    },
    entries,
    files,
    legacy: { unprotected },
  };
}
