import { HotocrError } from '../errors.js';

/** `registry.example.com:5000/team/ppocr:4.1.0` or `...@sha256:<hex>`, split into its parts. */
export interface OciReference {
  /** host[:port] */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function invalid(text: string, why: string): HotocrError {
  return new HotocrError(
    'REFERENCE_INVALID',
    `${JSON.stringify(text)} is not a registry reference (${why}); write REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST], e.g. localhost:5000/models/ppocr:4.1.0.`,
  );
}

/**
 * Parses a reference. The registry part is required (there is no default registry: models
 * are not images, and guessing a public host would leak names). `allowBare` accepts a
 * repository with neither tag nor digest (for following a whole repository).
 */
export function parseReference(text: string, options: { allowBare?: boolean } = {}): OciReference {
  const slash = text.indexOf('/');
  if (slash <= 0) throw invalid(text, 'no registry host');
  const registry = text.slice(0, slash);
  // As Docker reads it: the first part names a registry only with a dot, a port or "localhost".
  if (!/[.:]/.test(registry) && registry !== 'localhost' && !registry.startsWith('['))
    throw invalid(text, `"${registry}" is not a registry host`);
  if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$/.test(registry) && !/^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(registry))
    throw invalid(text, `bad registry host ${JSON.stringify(registry)}`);
  let rest = text.slice(slash + 1);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(text, 'the digest must be sha256: and 64 hex digits');
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(text, `bad tag ${JSON.stringify(tag)}`);
  }
  if (!REPOSITORY.test(rest)) throw invalid(text, `bad repository name ${JSON.stringify(rest)}`);
  if (!tag && !digest && !options.allowBare) throw invalid(text, 'no tag or digest');
  return { registry, repository: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatReference(ref: OciReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
