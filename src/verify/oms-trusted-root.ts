import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { type TrustMaterial, toTrustMaterial } from '@sigstore/verify';
import { messageOf, TrustStoreError } from '../errors.js';

/** The public-good Sigstore instance's TUF repository, under which @sigstore/tuf ships its seed. */
const PUBLIC_GOOD_REPOSITORY = 'https://tuf-repo-cdn.sigstore.dev';
const TRUSTED_ROOT_TARGET = 'trusted_root.json';
const TRUSTED_ROOT_MEDIA_TYPE =
  /^application\/vnd\.dev\.sigstore\.trustedroot(\.v0\.\d+)?\+json(;version=0\.\d+)?$/;
/** A trusted root is a few kilobytes; anything far larger is not one. */
const MAX_TRUSTED_ROOT_BYTES = 4 * 1024 * 1024;

/** The certificate authorities, transparency logs and CT logs keyless signatures are checked against. */
export interface SigstoreTrustedRoot {
  readonly material: TrustMaterial;
  /** Where it came from, for reports: the embedded seed and its package version, or a file name. */
  readonly source: string;
}

/**
 * The Sigstore trusted root: the public-good instance's, as `@sigstore/tuf` ships it in its
 * seed (read from the installed package, never fetched), or the one in `path` (a
 * `trusted_root.json`, e.g. for a private Sigstore instance or a newer public-good root).
 * One that cannot be read is TRUST_STORE_INVALID, an operator error.
 */
export function loadSigstoreTrustedRoot(path?: string): Promise<SigstoreTrustedRoot> {
  if (path !== undefined) return readTrustedRoot(path);
  // The embedded one never changes while the process runs: read once, by whoever asks first.
  if (!embedded) {
    const reading = readEmbeddedRoot();
    embedded = reading;
    reading.catch(() => {
      if (embedded === reading) embedded = undefined; // a failure is reported, and tried again next time
    });
  }
  return embedded;
}

let embedded: Promise<SigstoreTrustedRoot> | undefined;

async function readTrustedRoot(path: string): Promise<SigstoreTrustedRoot> {
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_TRUSTED_ROOT_BYTES)
      throw new TrustStoreError(`${path} is ${bytes.length} bytes: too large for a Sigstore trusted root.`);
    text = bytes.toString('utf8');
  } catch (cause) {
    if (cause instanceof TrustStoreError) throw cause;
    throw new TrustStoreError(`Cannot read the Sigstore trusted root ${path}: ${messageOf(cause)}.`, {
      cause,
    });
  }
  return { material: trustMaterialOf(text, basename(path)), source: basename(path) };
}

async function readEmbeddedRoot(): Promise<SigstoreTrustedRoot> {
  const require = createRequire(import.meta.url);
  let seeds: unknown;
  let version = 'unknown';
  try {
    const seedsPath = require.resolve('@sigstore/tuf/seeds.json');
    seeds = JSON.parse(await readFile(seedsPath, 'utf8'));
    version = (
      JSON.parse(await readFile(require.resolve('@sigstore/tuf/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch (cause) {
    throw new TrustStoreError(
      `The embedded Sigstore trusted root cannot be read (is @sigstore/tuf installed?): ${messageOf(cause)}; give one with --trusted-root.`,
      { cause },
    );
  }
  const target = (seeds as Record<string, { targets?: Record<string, string> } | undefined>)[
    PUBLIC_GOOD_REPOSITORY
  ]?.targets?.[TRUSTED_ROOT_TARGET];
  if (typeof target !== 'string')
    throw new TrustStoreError(
      `@sigstore/tuf's seed holds no ${TRUSTED_ROOT_TARGET} for ${PUBLIC_GOOD_REPOSITORY}; give one with --trusted-root.`,
    );
  const source = `Sigstore public-good (@sigstore/tuf ${version} seed)`;
  return { material: trustMaterialOf(Buffer.from(target, 'base64').toString('utf8'), source), source };
}

function trustMaterialOf(text: string, source: string): TrustMaterial {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new TrustStoreError(`${source} is not JSON; a Sigstore trusted root is trusted_root.json.`, {
      cause,
    });
  }
  const mediaType = (json as { mediaType?: unknown } | null)?.mediaType;
  if (typeof mediaType !== 'string' || !TRUSTED_ROOT_MEDIA_TYPE.test(mediaType))
    throw new TrustStoreError(
      `${source} is not a Sigstore trusted root (its mediaType is ${JSON.stringify(mediaType)}).`,
    );
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(json);
  } catch (cause) {
    throw new TrustStoreError(`${source} is not a readable Sigstore trusted root: ${messageOf(cause)}.`, {
      cause,
    });
  }
  if (root.tlogs.length === 0 || root.certificateAuthorities.length === 0)
    throw new TrustStoreError(
      `${source} names no transparency log or no certificate authority: keyless signatures cannot be checked against it.`,
    );
  try {
    return toTrustMaterial(root);
  } catch (cause) {
    throw new TrustStoreError(
      `${source} holds keys or certificates that cannot be read: ${messageOf(cause)}.`,
      {
        cause,
      },
    );
  }
}
