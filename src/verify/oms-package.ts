import { createHash } from 'node:crypto';
import { PackageRejectedError, type RejectionCode } from '../errors.js';
import { MANIFEST_FILE, type Manifest, OMS_SIGNATURE_FILE, type PackageArchive } from '../package/index.js';
import { hashDescriptor } from './hash-thread.js';
import { refuseFolders } from './oms-model.js';
import type { OmsSigner } from './oms-signer.js';
import type { OmsStatement } from './oms-statement.js';
import type { SigstoreTrustedRoot } from './oms-trusted-root.js';
import { trustStage } from './oms-verify.js';
import {
  checkManifest,
  hashStream,
  type SignerInfo,
  type VerifiedEntry,
  type VerifiedPackage,
  type VerifyOptions,
} from './verify-package.js';

/** What the OMS path needs besides the package verifier's own options. */
export interface OmsPackageOptions extends VerifyOptions {
  /** The Sigstore trusted root keyless signatures are checked against (default: the embedded one). */
  readonly sigstoreTrustedRoot?: SigstoreTrustedRoot;
}

function fail(code: RejectionCode, message: string, details: Record<string, unknown> = {}): never {
  throw new PackageRejectedError(code, message, { details });
}

/** The signer as a package's signer is reported: its kind says OMS, and which flavour. */
export function omsSignerInfo(signer: OmsSigner): SignerInfo {
  switch (signer.kind) {
    case 'key':
      return { ...signer, kind: 'oms-key' };
    case 'certificate':
      return { ...signer, kind: 'oms-certificate' };
    default:
      return { ...signer, kind: 'oms-sigstore' };
  }
}

/**
 * Every entry but model.sig is listed, and every listed name is an entry. Nothing is left out
 * here, whatever the statement's `ignore_paths` say: a package a server takes is covered whole.
 */
function checkCoverage(archive: PackageArchive, statement: OmsStatement): void {
  for (const entry of archive.entries) {
    if (entry.name === OMS_SIGNATURE_FILE || statement.resources.has(entry.name)) continue;
    fail(
      'CHECKSUM_UNLISTED_ENTRY',
      `Entry ${JSON.stringify(entry.name)} is not listed in model.sig's statement, so the signature does not cover it; a package holds the signed files and model.sig alone.`,
      { entry: entry.name },
    );
  }
  for (const name of statement.resources.keys()) {
    if (name !== OMS_SIGNATURE_FILE && archive.has(name)) continue;
    fail(
      'CHECKSUM_MISSING_ENTRY',
      `model.sig's statement lists ${JSON.stringify(name)}, which is not in the package.`,
      { entry: name },
    );
  }
}

/**
 * A ZIP signed with OpenSSF Model Signing, taken in exactly as a hotocr package is: the
 * signature (by a trusted EC key, a certificate chain to a pinned root, or keyless for an
 * identity the trust store names) and the coverage of every entry are checked from model.sig
 * alone; then config.json, against its signed digest (expiry and the version policy); only
 * then the graphs, in one pass over the archive on the hashing thread, keeping the bytes
 * `keepBytes` asks for. No graph byte is read before the signature and coverage hold.
 */
export async function verifyOmsArchive(
  archive: PackageArchive,
  path: string,
  options: OmsPackageOptions,
  hashed: (sha256: string) => void,
): Promise<VerifiedPackage> {
  const now = options.now ?? new Date();
  const bundle = await archive.readSmall(OMS_SIGNATURE_FILE);
  options.signal?.throwIfAborted();
  const { signer, statement } = await trustStage(bundle, {
    trust: options.trust,
    now,
    validAt: options.validAt ?? now,
    ...(options.sigstoreTrustedRoot ? { trustedRoot: options.sigstoreTrustedRoot } : {}),
    ...(options.trustBudgetMs !== undefined ? { trustBudgetMs: options.trustBudgetMs } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  refuseFolders(statement);
  checkCoverage(archive, statement);
  options.signal?.throwIfAborted();

  const expected = (name: string) => statement.resources.get(name)!;
  const mismatch = (name: string, actual: string): never =>
    fail(
      'CHECKSUM_MISMATCH',
      `Entry ${JSON.stringify(name)} does not match its SHA-256 in model.sig: it was changed after signing.`,
      { entry: name, expected: expected(name), actual },
    );

  // The manifest, from its own bytes checked against the signed digest, before the graphs.
  if (!statement.resources.has(MANIFEST_FILE))
    fail(
      'CONFIG_INVALID',
      `The package has no ${MANIFEST_FILE} covered by model.sig: a model hotocr serves is described by its config.json.`,
    );
  const manifestBytes = await archive.readSmall(MANIFEST_FILE);
  const manifestHash = createHash('sha256').update(manifestBytes).digest('hex');
  if (manifestHash !== expected(MANIFEST_FILE)) mismatch(MANIFEST_FILE, manifestHash);
  const manifest: Manifest = checkManifest(archive, manifestBytes, options.validAt ?? now, options);

  const choose = typeof options.keepBytes === 'function' ? options.keepBytes : undefined;
  const keep = (name: string): boolean =>
    options.keepBytes === true || choose?.({ name, sha256: expected(name) }, manifest) === true;
  const listed = archive.entries.map((e) => e.name).filter((name) => name !== OMS_SIGNATURE_FILE);
  const ranges = listed
    .filter((name) => name !== MANIFEST_FILE && archive.isStored(name))
    .map((name) => ({ name, ...archive.storedRange(name), keep: keep(name) }));
  const pass = await hashDescriptor(archive.descriptor, archive.size, ranges, options.nice, options.signal);
  hashed(pass.sha256);
  const stored = new Map(pass.ranges.map((r) => [r.name, r]));
  const files = new Map<string, Buffer>();
  const entries: VerifiedEntry[] = [
    { name: MANIFEST_FILE, size: manifestBytes.length, sha256: manifestHash },
  ];
  // Kept whenever any entry's bytes may be, as for a hotocr package.
  if (options.keepBytes) files.set(MANIFEST_FILE, manifestBytes);
  for (const name of listed) {
    if (name === MANIFEST_FILE) continue;
    options.signal?.throwIfAborted();
    const got =
      stored.get(name) ??
      (await hashStream(await archive.openStream(name), name, keep(name), options.signal));
    if (got.sha256 !== expected(name)) mismatch(name, got.sha256);
    if (got.bytes) files.set(name, got.bytes);
    entries.push({ name, size: got.size, sha256: got.sha256 });
  }
  return {
    path,
    sha256: pass.sha256,
    size: archive.size,
    manifest,
    signer: omsSignerInfo(signer),
    entries,
    files,
  };
}
