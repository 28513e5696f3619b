import { createHash } from 'node:crypto';
import { close, constants, fstat, open } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errnoOf, messageOf, PackageRejectedError, type RejectionCode } from '../errors.js';
import type { PackageArchive } from '../package/index.js';
import { hashDescriptor } from './hash-thread.js';
import { OMS_SIGNATURE_FILE } from './oms-bundle.js';
import { isUnder, MAX_RESOURCES, type OmsStatement } from './oms-statement.js';

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);

/** The most entries a model folder's walk visits (files, folders, ignored ones not counted). */
export const MAX_WALK_ENTRIES = 4 * MAX_RESOURCES;

/** Root-level paths the reference leaves out of a folder's signature unless told otherwise. */
export const GIT_PATHS: readonly string[] = ['.git', '.gitattributes', '.github', '.gitignore'];

/** One file of a model, hashed and matched against the signed statement. */
export interface OmsModelFile {
  /** Model-relative POSIX path; `.` for a single-file model. */
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** What the model holds, checked against the statement. */
export interface OmsCoverage {
  readonly files: readonly OmsModelFile[];
  /** Paths left out of the check (ignored files, and ignored folders as a whole), sorted. */
  readonly ignored: readonly string[];
  /** SHA-256 of the ZIP archive or of the single file; undefined for a folder. */
  readonly sha256?: string;
}

/** Why a path is left out, for messages; undefined when it is not. */
export type IgnoreRule = (name: string) => string | undefined;

export interface HashOptions {
  readonly nice?: number;
  readonly signal?: AbortSignal;
}

function fail(
  code: RejectionCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new PackageRejectedError(code, message, { details, cause });
}

function unreadable(what: string, cause: unknown): never {
  const errno = errnoOf(cause);
  const why =
    errno === 'ENOENT'
      ? 'it is gone'
      : errno === 'EACCES' || errno === 'EPERM'
        ? 'permission denied'
        : messageOf(cause);
  fail('MODEL_UNREADABLE', `${what} cannot be read: ${why}.`, errno ? { errno } : {}, cause);
}

const shown = (name: string) => JSON.stringify(name);

function unlisted(name: string): never {
  fail(
    'CHECKSUM_UNLISTED_ENTRY',
    `${shown(name)} is not listed in model.sig's statement, so the signature does not cover it; remove it, or name it with --ignore-paths if it is not part of the model.`,
    { entry: name },
  );
}

/** Every listed name must be present (and not ignored). */
function checkListed(statement: OmsStatement, present: ReadonlySet<string>, ignore: IgnoreRule): void {
  for (const name of statement.resources.keys()) {
    if (present.has(name)) continue;
    const why = ignore(name);
    fail(
      'CHECKSUM_MISSING_ENTRY',
      why
        ? `model.sig's statement lists ${shown(name)}, which is ignored (${why}): a signed file cannot be left out.`
        : `model.sig's statement lists ${shown(name)}, which is not in the model.`,
      { entry: name },
    );
  }
}

function mismatch(name: string, expected: string, actual: string): never {
  fail(
    'CHECKSUM_MISMATCH',
    `${name === '.' ? 'The model file' : shown(name)} does not match its SHA-256 in model.sig: it was changed after signing.`,
    { entry: name, expected, actual },
  );
}

/** Opens a regular file without following a symbolic link, and hashes it on the hashing thread. */
async function hashRegularFile(path: string, name: string, options: HashOptions): Promise<OmsModelFile> {
  let fd: number;
  try {
    fd = await openAsync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (cause) {
    if (errnoOf(cause) === 'ELOOP')
      fail('PATH_UNSAFE', `${shown(name)} is a symbolic link; a signed model holds regular files.`, {
        entry: name,
      });
    unreadable(shown(name), cause);
  }
  try {
    const info = await fstatAsync(fd);
    if (!info.isFile()) fail('PATH_UNSAFE', `${shown(name)} is not a regular file.`, { entry: name });
    let sha256: string;
    try {
      ({ sha256 } = await hashDescriptor(fd, info.size, [], options.nice, options.signal));
    } catch (cause) {
      if (cause instanceof PackageRejectedError && cause.code === 'ARCHIVE_INVALID')
        fail('MODEL_UNREADABLE', `${shown(name)} became shorter while it was read.`, { entry: name }, cause);
      if (options.signal?.aborted) throw cause;
      if (cause instanceof PackageRejectedError) throw cause;
      unreadable(shown(name), cause);
    }
    const after = await fstatAsync(fd);
    if (after.size !== info.size)
      fail('MODEL_UNREADABLE', `${shown(name)} changed size while it was read.`, { entry: name });
    return { name, size: info.size, sha256 };
  } finally {
    await closeAsync(fd);
  }
}

/**
 * A folder model: walks it (symbolic links and special files refused, as the reference does
 * unless told to follow links; ignored paths, and everything under an ignored folder,
 * skipped), refuses a file the statement does not list and a listed one that is missing,
 * then hashes every file and compares it. Names are compared byte for byte.
 */
export async function coverDirectory(
  root: string,
  statement: OmsStatement,
  ignore: IgnoreRule,
  options: HashOptions = {},
): Promise<OmsCoverage> {
  if (statement.resources.has('.'))
    fail(
      'CHECKSUM_MISSING_ENTRY',
      'model.sig\'s statement lists ".", the name a single-file model\'s statement gives its file, but the model is a folder.',
      { entry: '.' },
    );
  const present = new Map<string, string>();
  const ignored: string[] = [];
  const folders: string[] = [''];
  let visited = 0;
  while (folders.length > 0) {
    options.signal?.throwIfAborted();
    const folder = folders.pop()!;
    let dir: Awaited<ReturnType<typeof opendir>>;
    try {
      dir = await opendir(join(root, folder), { encoding: 'buffer' as BufferEncoding });
    } catch (cause) {
      unreadable(folder === '' ? 'The model folder' : shown(folder), cause);
    }
    try {
      for await (const entry of dir) {
        const raw = entry.name as unknown as Buffer;
        let base: string;
        try {
          base = new TextDecoder('utf-8', { fatal: true }).decode(raw);
        } catch {
          fail(
            'PATH_UNSAFE',
            `${shown(join(folder, raw.toString('latin1')))} has a name that is not UTF-8; rename it.`,
          );
        }
        const name = folder === '' ? base : `${folder}/${base}`;
        if (ignore(name)) {
          ignored.push(name);
          continue;
        }
        visited += 1;
        if (visited > MAX_WALK_ENTRIES)
          fail('ARCHIVE_TOO_LARGE', `The model folder holds over ${MAX_WALK_ENTRIES} entries.`, {
            limit: MAX_WALK_ENTRIES,
          });
        if (entry.isSymbolicLink())
          fail('PATH_UNSAFE', `${shown(name)} is a symbolic link; a signed model holds regular files.`, {
            entry: name,
          });
        if (entry.isDirectory()) folders.push(name);
        else if (entry.isFile()) {
          if (!statement.resources.has(name)) unlisted(name);
          present.set(name, join(root, name));
        } else fail('PATH_UNSAFE', `${shown(name)} is not a regular file or folder.`, { entry: name });
      }
    } catch (cause) {
      if (cause instanceof PackageRejectedError || options.signal?.aborted) throw cause;
      unreadable(folder === '' ? 'The model folder' : shown(folder), cause);
    }
  }
  checkListed(statement, new Set(present.keys()), ignore);
  const files: OmsModelFile[] = [];
  for (const [name, path] of [...present].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const file = await hashRegularFile(path, name, options);
    const expected = statement.resources.get(name)!;
    if (file.sha256 !== expected) mismatch(name, expected, file.sha256);
    files.push(file);
  }
  return { files, ignored: ignored.sort() };
}

/** A single-file model: its statement lists one resource, named `.`. */
export async function coverFile(
  path: string,
  statement: OmsStatement,
  options: HashOptions = {},
): Promise<OmsCoverage> {
  if (!statement.resources.has('.'))
    fail(
      'CHECKSUM_UNLISTED_ENTRY',
      `The model is a single file, which model.sig's statement would list as "."; it lists ${[
        ...statement.resources.keys(),
      ]
        .slice(0, 3)
        .map(shown)
        .join(', ')}${statement.resources.size > 3 ? ', ...' : ''} (a folder's signature?).`,
      { entry: '.' },
    );
  for (const name of statement.resources.keys())
    if (name !== '.')
      fail(
        'CHECKSUM_MISSING_ENTRY',
        `The model is a single file, but model.sig's statement also lists ${shown(name)}.`,
        { entry: name },
      );
  const file = await hashRegularFile(path, '.', options);
  const expected = statement.resources.get('.')!;
  if (file.sha256 !== expected) mismatch('.', expected, file.sha256);
  return { files: [file], ignored: [], sha256: file.sha256 };
}

/**
 * A ZIP model: its entries (flat, every archive rule of a hotocr package applied when it was
 * opened) but `model.sig` are the model's files. The archive is read once: its own hash and
 * every stored entry's come from the same bytes; deflated entries are hashed as they inflate.
 */
export async function coverArchive(
  archive: PackageArchive,
  statement: OmsStatement,
  ignore: IgnoreRule,
  options: HashOptions = {},
): Promise<OmsCoverage> {
  const ignored: string[] = [];
  const present: string[] = [];
  for (const entry of archive.entries) {
    if (ignore(entry.name)) ignored.push(entry.name);
    else if (!statement.resources.has(entry.name)) unlisted(entry.name);
    else present.push(entry.name);
  }
  checkListed(statement, new Set(present), ignore);
  const ranges = present
    .filter((name) => archive.isStored(name))
    .map((name) => ({ name, ...archive.storedRange(name), keep: false }));
  const pass = await hashDescriptor(archive.descriptor, archive.size, ranges, options.nice, options.signal);
  const stored = new Map(pass.ranges.map((r) => [r.name, r]));
  const files: OmsModelFile[] = [];
  for (const name of present.sort()) {
    let got = stored.get(name);
    if (!got) {
      const hash = createHash('sha256');
      let size = 0;
      try {
        for await (const chunk of await archive.openStream(name)) {
          options.signal?.throwIfAborted();
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
      } catch (cause) {
        if (cause instanceof PackageRejectedError || options.signal?.aborted) throw cause;
        fail(
          'ARCHIVE_INVALID',
          `Entry ${shown(name)} is corrupt (${messageOf(cause)}).`,
          { entry: name },
          cause,
        );
      }
      got = { name, sha256: hash.digest('hex'), size };
    }
    const expected = statement.resources.get(name)!;
    if (got.sha256 !== expected) mismatch(name, expected, got.sha256);
    files.push({ name, size: got.size, sha256: got.sha256 });
  }
  return { files, ignored: ignored.sort(), sha256: pass.sha256 };
}

/**
 * The rule for what a folder or archive check leaves out: `model.sig` at the root and the
 * signature file itself, the reference's git paths (unless `gitPaths` is false), the paths
 * the operator names and those the signed statement names. Each applies to the path and to
 * everything under it.
 */
export function ignoreRule(rules: {
  signature?: string;
  gitPaths: boolean;
  operator: readonly string[];
  signed: readonly string[];
}): IgnoreRule {
  const named: [string, string][] = [
    [OMS_SIGNATURE_FILE, 'the signature'],
    ...(rules.signature ? ([[rules.signature, 'the signature']] as [string, string][]) : []),
    ...(rules.gitPaths ? GIT_PATHS.map((p): [string, string] => [p, 'a git path, left out by default']) : []),
    ...rules.operator.map((p): [string, string] => [p, '--ignore-paths']),
    ...rules.signed.map((p): [string, string] => [p, "the statement's ignore_paths"]),
  ];
  return (name) => named.find(([prefix]) => isUnder(name, prefix))?.[1];
}

/**
 * A hotocr package is flat: a statement listing a file in a folder (a model directory with
 * folders, signed as it was) cannot describe one, whatever the archive holds.
 */
export function refuseFolders(statement: OmsStatement): void {
  const nested = [...statement.resources.keys()].find((name) => name.includes('/'));
  if (nested)
    fail(
      'MODEL_NOT_FLAT',
      `model.sig's statement lists ${shown(nested)}, a file in a folder: the model was signed as a directory with folders, but a hotocr package is flat. Move every file of the model to its top folder, sign it again, and zip the files alone.`,
      { entry: nested },
    );
}
