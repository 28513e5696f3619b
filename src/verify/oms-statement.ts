import { createHash } from 'node:crypto';
import { PackageRejectedError } from '../errors.js';

/** The in-toto statement type an OMS signature carries. */
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** The OMS v1.0 predicate: serialization parameters and one digest per file. */
export const OMS_PREDICATE_TYPE = 'https://model_signing/signature/v1.0';
/** model_signing 0.2's experimental predicate, which carries no subject digest. */
const OMS_PREDICATE_TYPE_V0_2 = 'https://model_signing/Digests/v0.1';

/** Bounds on a statement, so that a hostile one costs little to refuse. */
export const MAX_RESOURCES = 100_000;
export const MAX_RESOURCE_NAME_BYTES = 4096;

/** What a verified OMS statement says about the model. */
export interface OmsStatement {
  /** The subject's name: the signed folder's or file's name, informative only. */
  readonly name: string;
  /** SHA-256 over the resources' digests, in the statement's order: the model's identity. */
  readonly digest: string;
  /** Model-relative POSIX path (`.` for a single file) to its SHA-256, lowercase hex. */
  readonly resources: ReadonlyMap<string, string>;
  /** Model-relative paths the signer left out (`serialization.ignore_paths`), normalised. */
  readonly ignorePaths: readonly string[];
}

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new PackageRejectedError('OMS_STATEMENT_INVALID', message, { details });
}

function unsupported(message: string, details: Record<string, unknown> = {}): never {
  throw new PackageRejectedError('OMS_UNSUPPORTED', message, { details });
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A model-relative path as the reference reads one (Python's PurePosixPath): empty and `.`
 * components dropped, so `./a//b/` is `a/b` and the model itself is `.`. Absolute paths and
 * `..` would leave the model folder; a NUL byte names no file. Returns the reason it is
 * refused instead of a path.
 */
export function normalizeModelPath(name: string): string | { refused: string } {
  if (name.includes('\0')) return { refused: 'holds a NUL character' };
  if (name.startsWith('/')) return { refused: 'is absolute' };
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { refused: 'climbs out of the model folder with ".."' };
  return parts.length === 0 ? '.' : parts.join('/');
}

/** Whether `path` is `prefix` or lies under it (both normalised; `.` covers everything). */
export function isUnder(path: string, prefix: string): boolean {
  return prefix === '.' || path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Parses the DSSE payload of an OMS signature, after its signature verified: an in-toto v1
 * statement with the OMS v1.0 predicate, serialized by file with SHA-256, one subject whose
 * digest is the SHA-256 of the resources' digests taken in the order listed (as the
 * reference computes it when verifying), names that stay inside the model and appear once.
 * Refused with OMS_STATEMENT_INVALID, or OMS_UNSUPPORTED for what OMS allows but hotocr does
 * not verify (serialization by shards, hashes other than SHA-256, model_signing 0.2 statements).
 * Fields a v1.0 verifier must ignore are ignored.
 */
export function parseOmsStatement(payload: Buffer): OmsStatement {
  let statement: unknown;
  try {
    statement = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    invalid('The signed payload of model.sig is not JSON text; it must be an in-toto statement.');
  }
  if (!isObject(statement)) invalid('The signed payload of model.sig is not a JSON object.');
  if (statement._type !== IN_TOTO_STATEMENT_TYPE)
    invalid(
      `The signed statement's _type is ${JSON.stringify(statement._type)}, not ${IN_TOTO_STATEMENT_TYPE}.`,
    );
  if (statement.predicateType === OMS_PREDICATE_TYPE_V0_2)
    unsupported(
      `The signed statement is of model_signing 0.2 (${OMS_PREDICATE_TYPE_V0_2}), which hotocr does not verify; re-sign the model with model_signing 1.0 or later.`,
    );
  if (statement.predicateType !== OMS_PREDICATE_TYPE)
    invalid(
      `The signed statement's predicateType is ${JSON.stringify(statement.predicateType)}, not ${OMS_PREDICATE_TYPE}.`,
    );

  const subjects = statement.subject;
  if (!Array.isArray(subjects) || subjects.length !== 1)
    invalid('The signed statement must have exactly one subject (the model and its digest).');
  const subject = subjects[0];
  const subjectDigest = isObject(subject) && isObject(subject.digest) ? subject.digest.sha256 : undefined;
  if (!isObject(subject) || typeof subject.name !== 'string' || typeof subjectDigest !== 'string')
    invalid('The statement\'s subject must have a name and a digest {"sha256": ...}.');

  const predicate = statement.predicate;
  if (!isObject(predicate) || !isObject(predicate.serialization) || !Array.isArray(predicate.resources))
    invalid('The statement\'s predicate must hold "serialization" and "resources".');
  const serialization = predicate.serialization;
  if (serialization.method === 'shards')
    unsupported(
      'model.sig was made by shards (serialization method "shards"); hotocr verifies models signed by files: re-sign without --shard_size (method "files").',
      { method: 'shards' },
    );
  if (serialization.method !== 'files')
    invalid(
      `The statement's serialization method is ${JSON.stringify(serialization.method)}; OMS knows "files" and "shards".`,
    );
  if (serialization.hash_type !== 'sha256')
    unsupported(
      `model.sig hashes files with ${JSON.stringify(serialization.hash_type)}; hotocr verifies SHA-256 (hash_type "sha256") only.`,
      { hashType: serialization.hash_type },
    );
  if (typeof serialization.allow_symlinks !== 'boolean')
    invalid('The statement\'s serialization lacks "allow_symlinks" (true or false).');
  const ignorePaths = parseIgnorePaths(serialization.ignore_paths);

  const resources = predicate.resources as unknown[];
  if (resources.length === 0) invalid('The signed statement lists no file.');
  if (resources.length > MAX_RESOURCES)
    invalid(`The signed statement lists ${resources.length} files, over the limit of ${MAX_RESOURCES}.`, {
      resources: resources.length,
      limit: MAX_RESOURCES,
    });
  const listed = new Map<string, string>();
  const root = createHash('sha256');
  resources.forEach((resource, i) => {
    if (
      !isObject(resource) ||
      typeof resource.name !== 'string' ||
      typeof resource.algorithm !== 'string' ||
      typeof resource.digest !== 'string'
    )
      invalid(`Resource ${i + 1} of the signed statement must have a name, an algorithm and a digest.`, {
        index: i + 1,
      });
    const { name: raw, algorithm, digest } = resource as { name: string; algorithm: string; digest: string };
    const shown = JSON.stringify(raw.slice(0, 200));
    if (algorithm !== 'sha256')
      unsupported(
        `Resource ${shown} is hashed with ${JSON.stringify(algorithm)}; hotocr verifies SHA-256 only.`,
        {
          resource: raw,
          algorithm,
        },
      );
    if (!/^[0-9a-fA-F]{64}$/.test(digest))
      invalid(`Resource ${shown} has a digest that is not 64 hexadecimal digits.`, { resource: raw });
    if (Buffer.byteLength(raw) > MAX_RESOURCE_NAME_BYTES)
      invalid(`Resource ${i + 1} has a name over ${MAX_RESOURCE_NAME_BYTES} bytes.`, { index: i + 1 });
    const name = normalizeModelPath(raw);
    if (typeof name !== 'string')
      invalid(`Resource ${shown} ${name.refused}: a name must stay inside the model folder.`, {
        resource: raw,
      });
    if (listed.has(name))
      invalid(`The signed statement lists ${JSON.stringify(name)} twice.`, { resource: name });
    const bytes = Buffer.from(digest, 'hex');
    root.update(bytes);
    listed.set(name, bytes.toString('hex'));
  });
  const computed = root.digest('hex');
  if (computed !== subjectDigest)
    invalid(
      `The statement's subject digest (${String(subjectDigest).slice(0, 80)}) is not the SHA-256 of its resources' digests (${computed}): the statement is inconsistent.`,
      { expected: subjectDigest, computed },
    );
  return { name: subject.name as string, digest: computed, resources: listed, ignorePaths };
}

function parseIgnorePaths(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((p) => typeof p !== 'string'))
    invalid('The statement\'s "ignore_paths" must be a list of paths.');
  if (value.length > MAX_RESOURCES)
    invalid(`The statement's "ignore_paths" lists over ${MAX_RESOURCES} paths.`);
  return (value as string[]).map((raw) => {
    const path = normalizeModelPath(raw);
    if (typeof path !== 'string')
      invalid(`The statement's ignore path ${JSON.stringify(raw.slice(0, 200))} ${path.refused}.`);
    return path;
  });
}
