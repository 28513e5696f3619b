import { close, constants, fstat, open, read } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { errnoOf, HotocrError, messageOf, PackageRejectedError } from '../errors.js';
import {
  type ArchiveLimits,
  CHECKSUM_FILE,
  DEFAULT_LIMITS,
  MANIFEST_FILE,
  type Manifest,
  PackageArchive,
  SIGNATURE_FILE,
} from '../package/index.js';
import { MAX_BUNDLE_BYTES, OMS_SIGNATURE_FILE, parseOmsBundle } from './oms-bundle.js';
import { type KeylessPolicy, verifyKeyless } from './oms-keyless.js';
import {
  coverArchive,
  coverDirectory,
  coverFile,
  ignoreRule,
  type OmsCoverage,
  refuseFolders,
} from './oms-model.js';
import { type OmsSigner, verifyTrustSigned } from './oms-signer.js';
import { normalizeModelPath, type OmsStatement, parseOmsStatement } from './oms-statement.js';
import { loadSigstoreTrustedRoot, type SigstoreTrustedRoot } from './oms-trusted-root.js';
import type { TrustStore } from './trust-store.js';
import { checkManifest, DEFAULT_TRUST_BUDGET_MS, trustDeadline } from './verify-package.js';

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);
const closeAsync = promisify(close);

/** How an OMS model is laid out: a folder with `model.sig`, one file, or a ZIP carrying `model.sig`. */
export type OmsForm = 'directory' | 'file' | 'archive';

export interface OmsVerifyOptions {
  /** Public keys (key flavour) and pinned roots (certificate flavour), with deny lists. */
  readonly trust?: TrustStore;
  /** Who a keyless (Sigstore) signature must come from. */
  readonly keyless?: KeylessPolicy;
  /** The Sigstore trusted root for keyless signatures (default: the embedded public-good one). */
  readonly trustedRoot?: SigstoreTrustedRoot;
  /** The signature file (default: `model.sig` in the folder); required for a single file. */
  readonly signature?: string;
  /** Paths to leave out of a folder or archive, as the reference's `--ignore-paths`. */
  readonly ignorePaths?: readonly string[];
  /** Leave out `.git`, `.gitattributes`, `.github` and `.gitignore` at the root (default true). */
  readonly ignoreGitPaths?: boolean;
  /** The time `Not-After` lines are judged at (default now). */
  readonly now?: Date;
  /** The time certificate validity (certificate flavour) is judged at (default `now`). */
  readonly validAt?: Date;
  readonly trustBudgetMs?: number;
  readonly clock?: () => number;
  readonly signal?: AbortSignal;
  readonly nice?: number;
  readonly limits?: ArchiveLimits;
}

/** An OMS-signed model every check passed for. */
export interface VerifiedOmsModel {
  readonly path: string;
  readonly form: OmsForm;
  readonly flavour: OmsSigner['kind'];
  /** The statement's subject name: the folder's or file's name when signed, informative only. */
  readonly name: string;
  /** The statement's subject digest: SHA-256 over the files' digests. */
  readonly digest: string;
  /** SHA-256 of the ZIP or of the single file; null for a folder. */
  readonly sha256: string | null;
  readonly signer: OmsSigner;
  readonly files: OmsCoverage['files'];
  readonly ignored: readonly string[];
  /** A ZIP's `config.json`, checked as a hotocr package's, when it carries one the signature covers. */
  readonly manifest?: Manifest;
}

/**
 * Which OMS form `path` is, or undefined when it is not one (a hotocr package, or nothing
 * readable: left to the package verifier, which reports as it always has). With a signature
 * file named, the path is the model itself, a folder or a single file; without one, a folder,
 * or a ZIP that carries `model.sig` and neither `checksum.sha256` nor `signature.sig`.
 */
export async function omsFormOf(path: string, signature?: string): Promise<OmsForm | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (signature !== undefined) return info?.isDirectory() ? 'directory' : 'file';
  if (!info) return undefined;
  if (info.isDirectory()) return 'directory';
  if (!info.isFile()) return undefined;
  let archive: PackageArchive | undefined;
  try {
    archive = await PackageArchive.open(path);
    return archive.has(OMS_SIGNATURE_FILE) && !archive.has(CHECKSUM_FILE) && !archive.has(SIGNATURE_FILE)
      ? 'archive'
      : undefined;
  } catch {
    return undefined;
  } finally {
    await archive?.close();
  }
}

/**
 * Verifies an OpenSSF Model Signing (OMS v1.0) model as the reference verifier does, and no
 * less strictly than a hotocr package: reads `model.sig` (bounded), checks its signature by
 * flavour (a trusted EC key; a certificate chain to a pinned root; or keyless, against the
 * Sigstore trusted root offline, for exactly the given identity and issuer), parses the signed
 * statement, then checks that every file of the model is listed with its SHA-256 and every
 * listed file is there. The first failure throws a {@link PackageRejectedError} whose details
 * carry `path`.
 */
export async function verifyOmsModel(
  path: string,
  form: OmsForm,
  options: OmsVerifyOptions,
): Promise<VerifiedOmsModel> {
  try {
    return await verifyForm(path, form, options);
  } catch (error) {
    if (error instanceof PackageRejectedError) Object.assign(error.details, { path });
    throw error;
  }
}

async function verifyForm(path: string, form: OmsForm, options: OmsVerifyOptions): Promise<VerifiedOmsModel> {
  options.signal?.throwIfAborted();
  if (form === 'archive') {
    const archive = await PackageArchive.open(path, options.limits ?? DEFAULT_LIMITS);
    try {
      const operator = operatorPaths(options.ignorePaths ?? [], undefined);
      const bundle = await archive.readSmall(OMS_SIGNATURE_FILE);
      const { signer, statement } = await trustStage(bundle, options);
      refuseFolders(statement);
      const ignore = ignoreRule({ gitPaths: false, operator, signed: statement.ignorePaths });
      const coverage = await coverArchive(archive, statement, ignore, options);
      const covered = coverage.files.some((f) => f.name === MANIFEST_FILE);
      const manifest = covered
        ? checkManifest(
            archive,
            await archive.readSmall(MANIFEST_FILE),
            options.validAt ?? options.now ?? new Date(),
            {},
          )
        : undefined;
      return result(path, form, statement, signer, coverage, manifest);
    } finally {
      await archive.close();
    }
  }
  await refuseLink(path);
  if (form === 'file' && options.signature === undefined)
    throw new PackageRejectedError(
      'SIGNATURE_MISSING',
      'A single-file model is verified with its signature named: --signature MODEL.sig.',
    );
  const signaturePath = options.signature ?? join(path, OMS_SIGNATURE_FILE);
  const operator = form === 'directory' ? operatorPaths(options.ignorePaths ?? [], path) : [];
  const { signer, statement } = await trustStage(await readSignature(signaturePath), options);
  if (form === 'file')
    return result(path, form, statement, signer, await coverFile(path, statement, options));
  const inside = relative(resolve(path), resolve(signaturePath));
  const ignore = ignoreRule({
    ...(inside && !inside.startsWith('..') && !isAbsolute(inside)
      ? { signature: inside.split(sep).join('/') }
      : {}),
    gitPaths: options.ignoreGitPaths ?? true,
    operator,
    signed: statement.ignorePaths,
  });
  return result(path, form, statement, signer, await coverDirectory(path, statement, ignore, options));
}

function result(
  path: string,
  form: OmsForm,
  statement: OmsStatement,
  signer: OmsSigner,
  coverage: OmsCoverage,
  manifest?: Manifest,
): VerifiedOmsModel {
  return {
    path,
    form,
    flavour: signer.kind,
    name: statement.name,
    digest: statement.digest,
    sha256: coverage.sha256 ?? null,
    signer,
    files: coverage.files,
    ignored: coverage.ignored,
    ...(manifest ? { manifest } : {}),
  };
}

/** The reference refuses a model that is itself a symbolic link. */
async function refuseLink(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSymbolicLink())
      throw new PackageRejectedError(
        'PATH_UNSAFE',
        `${path} is a symbolic link; name the model's folder or file itself.`,
      );
  } catch (cause) {
    if (cause instanceof PackageRejectedError) throw cause;
    throw new PackageRejectedError(
      'MODEL_UNREADABLE',
      `The model cannot be read: ${errnoOf(cause) === 'ENOENT' ? 'there is no such file or folder' : messageOf(cause)}.`,
      { cause },
    );
  }
}

/** Reads the signature file, bounded, refusing what is not a regular file (a FIFO would wait forever). */
async function readSignature(path: string): Promise<Buffer> {
  let fd: number;
  try {
    fd = await openAsync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT')
      throw new PackageRejectedError(
        'SIGNATURE_MISSING',
        `There is no signature ${path}: sign the model with model_signing, or name its signature with --signature.`,
        { cause },
      );
    throw new PackageRejectedError(
      'MODEL_UNREADABLE',
      `The signature ${path} cannot be read: ${messageOf(cause)}.`,
      {
        cause,
      },
    );
  }
  try {
    const info = await fstatAsync(fd);
    if (!info.isFile())
      throw new PackageRejectedError('OMS_BUNDLE_INVALID', `The signature ${path} is not a regular file.`);
    if (info.size > MAX_BUNDLE_BYTES)
      throw new PackageRejectedError(
        'OMS_BUNDLE_INVALID',
        `model.sig is ${info.size} bytes, over the limit of ${MAX_BUNDLE_BYTES}.`,
        { details: { size: info.size, limit: MAX_BUNDLE_BYTES } },
      );
    const bytes = Buffer.alloc(info.size);
    let at = 0;
    while (at < bytes.length) {
      const { bytesRead } = await readAsync(fd, bytes, at, bytes.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return bytes.subarray(0, at);
  } finally {
    await closeAsync(fd);
  }
}

/**
 * Paths named with `--ignore-paths`, model-relative: the reference takes them as paths from the
 * current folder (`DIR/ignore-me`); one that does not lie inside the model is taken as
 * relative to it (`ignore-me`). For an archive (`root` undefined), entry names.
 */
function operatorPaths(paths: readonly string[], root: string | undefined): string[] {
  return paths.map((given) => {
    let candidate = given;
    if (root !== undefined) {
      const inside = relative(resolve(root), resolve(given));
      if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside)))
        candidate = inside === '' ? '.' : inside.split(sep).join('/');
    }
    const path = normalizeModelPath(candidate);
    if (typeof path !== 'string')
      throw new HotocrError(
        'USAGE',
        `--ignore-paths ${JSON.stringify(given)} ${path.refused}: name a path inside the model${root === undefined ? ' (for a ZIP, an entry name)' : ''}.`,
      );
    return path;
  });
}

/**
 * Reads the bundle and checks its signature by flavour, within the trust stage's time budget;
 * then the statement. A keyless signature is trusted for `options.keyless` when given, else for
 * the identities the trust store names.
 */
export async function trustStage(
  bytes: Buffer,
  options: OmsVerifyOptions,
): Promise<{ signer: OmsSigner; statement: OmsStatement }> {
  const bundle = parseOmsBundle(bytes);
  const now = options.now ?? new Date();
  let signer: OmsSigner;
  if (bundle.material.kind === 'keyless') {
    const identities = options.keyless ? [options.keyless] : (options.trust?.identities ?? []);
    if (identities.length === 0)
      throw new PackageRejectedError(
        'KEY_UNTRUSTED',
        'model.sig is a keyless (Sigstore) signature: say whom to trust with --identity and --issuer, or in a .identities file of the trust folder (docs/SIGNING.md).',
      );
    const trustedRoot = options.trustedRoot ?? (await loadSigstoreTrustedRoot());
    const checkpoint = trustDeadline(options, 'model');
    signer = verifyKeyless(bundle, {
      identities: identities.map((i) =>
        'line' in i ? { identity: i.identity, issuer: i.issuer, source: `${i.source} line ${i.line}` } : i,
      ),
      trustedRoot,
      ...(options.trust ? { trust: options.trust } : {}),
    });
    checkpoint();
  } else {
    if (!options.trust)
      throw new PackageRejectedError(
        'KEY_UNTRUSTED',
        `model.sig is signed with ${bundle.material.kind === 'key' ? 'a key' : 'a certificate chain'}: trust its ${bundle.material.kind === 'key' ? 'public key' : "root certificate (or the signer's public key)"} with --trust.`,
      );
    const trust = {
      trust: options.trust,
      now,
      validAt: options.validAt ?? now,
      checkpoint: trustDeadline(
        { ...options, trustBudgetMs: options.trustBudgetMs ?? DEFAULT_TRUST_BUDGET_MS },
        'model',
      ),
    };
    signer = verifyTrustSigned(bundle, trust);
  }
  options.signal?.throwIfAborted();
  return { signer, statement: parseOmsStatement(bundle.payload) };
}
