import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ErrorCode, HotocrError, messageOf } from '../errors.js';
import { formatReference, type OciReference } from './reference.js';

/** The layer that holds a hotocr package, and the small config blob beside it. */
export const PACKAGE_MEDIA_TYPE = 'application/vnd.hotocr.package.v1+zip';
export const CONFIG_MEDIA_TYPE = 'application/vnd.hotocr.package.config.v1+json';
const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const ANNOTATION_NAME = 'dev.hotocr.package.name';
export const ANNOTATION_VERSION = 'dev.hotocr.package.version';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface OciClientOptions {
  /**
   * Registries spoken to over plain HTTP. Default: loopback hosts only (localhost,
   * 127.0.0.1, [::1]); everything else is HTTPS.
   */
  readonly insecure?: readonly string[];
  /** A bearer token sent to every registry (HOTOCR_REGISTRY_TOKEN). */
  readonly token?: string;
  /** Docker's config file, for `auths` (default ~/.docker/config.json; the CLI and server pass $DOCKER_CONFIG's). */
  readonly dockerConfig?: string;
  /** Longest one request may take before REGISTRY_UNREACHABLE (default 30 s; blobs get 10 minutes). */
  readonly timeoutMs?: number;
  /**
   * Hosts (host or host:port) of token services that may receive the Docker config's
   * credentials besides the registry's own host, e.g. auth.docker.io for Docker Hub.
   */
  readonly tokenRealms?: readonly string[];
}

/** The most read from a registry for each kind of answer: past it the answer is refused, not read on. */
export const READ_LIMITS = {
  manifest: 1024 * 1024,
  tags: 4 * 1024 * 1024,
  token: 64 * 1024,
  error: 4096,
} as const;

/**
 * Reads a response's body while counting it, and stops (cancelling the rest) at `limit`
 * bytes with `code`: a registry or a peer can make hotocr read no more than that.
 */
export async function readLimited(
  res: Response,
  limit: number,
  code: ErrorCode,
  what: string,
): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw error(code, `${what} is ${declared} bytes, over the ${limit}-byte limit.`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  for (;;) {
    let step: Awaited<ReturnType<typeof reader.read>>;
    try {
      step = await reader.read();
    } catch (cause) {
      throw error('REGISTRY_UNREACHABLE', `${what} could not be read: ${messageOf(cause)}`, cause);
    }
    if (step.done) break;
    size += step.value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw error(code, `${what} is over the ${limit}-byte limit.`);
    }
    chunks.push(step.value);
  }
  return Buffer.concat(chunks);
}

/** Drops a body unread: an error page is not ours to read, nor to show. */
async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function error(code: ErrorCode, message: string, cause?: unknown): HotocrError {
  return new HotocrError(code, message, cause === undefined ? {} : { cause });
}

/** Credentials from Docker's config file, by registry host. */
async function dockerAuths(path: string | undefined): Promise<Map<string, string>> {
  const file = path ?? join(homedir(), '.docker', 'config.json');
  const auths = new Map<string, string>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return auths;
  }
  try {
    const config = JSON.parse(text) as { auths?: Record<string, { auth?: string }> };
    for (const [host, entry] of Object.entries(config.auths ?? {})) {
      if (typeof entry?.auth === 'string')
        auths.set(host.replace(/^https?:\/\//, '').replace(/\/.*$/, ''), entry.auth);
    }
  } catch (cause) {
    throw error('REGISTRY_AUTH', `The Docker config file ${file} is not valid JSON.`, cause);
  }
  return auths;
}

/**
 * A client for the OCI distribution API, enough to push a package as an artifact (one
 * layer with its own media type), pull it back by tag or digest, and list tags. Speaks
 * anonymous, basic (Docker's config file) and bearer-token auth, including the token
 * service flow a registry asks for with `WWW-Authenticate: Bearer realm=...`.
 */
export class OciClient {
  readonly #options: OciClientOptions;
  #auths: Promise<Map<string, string>> | undefined;
  readonly #tokens = new Map<string, string>();

  constructor(options: OciClientOptions = {}) {
    this.#options = options;
  }

  #base(registry: string): string {
    const host = registry.replace(/:\d+$/, '');
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(host);
    const plain = loopback || (this.#options.insecure ?? []).includes(registry);
    return `${plain ? 'http' : 'https'}://${registry}`;
  }

  async #basic(registry: string): Promise<string | undefined> {
    this.#auths ??= dockerAuths(this.#options.dockerConfig);
    return (await this.#auths).get(registry);
  }

  /** Whether plain HTTP may be spoken to the registry (loopback, or named insecure). */
  #plain(registry: string): boolean {
    const host = registry.replace(/:\d+$/, '');
    return (
      ['localhost', '127.0.0.1', '[::1]'].includes(host) || (this.#options.insecure ?? []).includes(registry)
    );
  }

  /**
   * A token from the registry's token service, for the scope its 401 asked for. The Docker
   * config's credentials go only to a service on the registry's own host, or on one the
   * operator named, over HTTPS unless the registry itself may be spoken to over HTTP;
   * anywhere else the token is asked for anonymously.
   */
  async #bearer(registry: string, challenge: string): Promise<string> {
    const params = Object.fromEntries(
      [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]),
    );
    if (!params.realm)
      throw error('REGISTRY_AUTH', `${registry} asked for a token without saying where to get one.`);
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      throw error('REGISTRY_AUTH', `${registry} named a token service that is not a URL.`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.#plain(registry)))
      throw error(
        'REGISTRY_AUTH',
        `${registry} named a token service over ${url.protocol.replace(':', '')} (${url.host}); only HTTPS is spoken to a token service, unless the registry itself is spoken to over HTTP.`,
      );
    if (params.service) url.searchParams.set('service', params.service);
    if (params.scope) url.searchParams.set('scope', params.scope);
    const trusted = url.host === registry || (this.#options.tokenRealms ?? []).includes(url.host);
    const basic = trusted ? await this.#basic(registry) : undefined;
    const res = await fetch(url, {
      headers: basic ? { authorization: `Basic ${basic}` } : {},
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
    }).catch((cause: unknown) => {
      throw error(
        'REGISTRY_UNREACHABLE',
        `The token service ${url.origin} cannot be reached: ${messageOf(cause)}`,
        cause,
      );
    });
    if (!res.ok) {
      await discard(res);
      throw error(
        'REGISTRY_AUTH',
        trusted || !(await this.#basic(registry))
          ? `The token service of ${registry} refused (${res.status}); check the credentials (docker login).`
          : `The token service of ${registry} is on another host (${url.host}), which is not given the credentials unless named with --registry-token-realm ${url.host}; it refused without them (${res.status}).`,
      );
    }
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(
        (await readLimited(res, READ_LIMITS.token, 'REGISTRY_AUTH', 'The token service answer')).toString(
          'utf8',
        ),
      ) as typeof body;
    } catch (cause) {
      if (cause instanceof HotocrError) throw cause;
      throw error('REGISTRY_AUTH', `The token service of ${registry} did not answer JSON.`, cause);
    }
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '')
      throw error('REGISTRY_AUTH', `The token service of ${registry} gave no token.`);
    return token;
  }

  /**
   * One request, with the credentials the registry asks for (retried once after a 401).
   * Redirects are not followed, but for blob downloads (`followRedirect`), and those are
   * followed without credentials: a registry cannot send them elsewhere.
   */
  async #request(
    registry: string,
    path: string,
    init: RequestInit & { timeoutMs?: number; followRedirect?: boolean } = {},
    accept: readonly number[] = [200],
  ): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.#base(registry)}${path}`;
    const timeout = () => AbortSignal.timeout(init.timeoutMs ?? this.#options.timeoutMs ?? 30_000);
    const send = async (authorization: string | undefined) => {
      const headers = new Headers(init.headers);
      if (authorization) headers.set('authorization', authorization);
      try {
        const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: timeout() });
        const location = res.headers.get('location');
        if (!init.followRedirect || res.status < 300 || res.status > 399 || !location) return res;
        await discard(res);
        // Elsewhere (a blob store), with no credentials of ours; further redirects likewise.
        return await fetch(new URL(location, url), { redirect: 'follow', signal: timeout() });
      } catch (cause) {
        throw error(
          'REGISTRY_UNREACHABLE',
          `The registry ${registry} cannot be reached: ${messageOf(cause)}${(cause as Error).cause ? ` (${messageOf((cause as Error).cause)})` : ''}.`,
          cause,
        );
      }
    };
    const known =
      this.#tokens.get(registry) ??
      (this.#options.token
        ? `Bearer ${this.#options.token}`
        : (await this.#basic(registry))
          ? `Basic ${await this.#basic(registry)}`
          : undefined);
    let res = await send(known);
    if (res.status === 401 && !(init.body instanceof ReadableStream)) {
      const challenge = res.headers.get('www-authenticate') ?? '';
      await discard(res);
      let authorization: string | undefined;
      if (/^bearer /i.test(challenge)) authorization = `Bearer ${await this.#bearer(registry, challenge)}`;
      else {
        const basic = await this.#basic(registry);
        if (basic) authorization = `Basic ${basic}`;
      }
      if (authorization && authorization !== known) {
        this.#tokens.set(registry, authorization);
        res = await send(authorization);
      }
    }
    if (accept.includes(res.status)) return res;
    // The body is the registry's, not ours: it is neither read whole nor shown to anyone.
    await discard(res);
    if (res.status >= 300 && res.status <= 399)
      throw error(
        'REGISTRY_ERROR',
        `${registry} redirected ${init.method ?? 'GET'} ${path.replace(/\?.*$/, '')} elsewhere (${res.status}); only blob downloads may be redirected.`,
      );
    if (res.status === 401 || res.status === 403)
      throw error(
        'REGISTRY_AUTH',
        `${registry} refused ${init.method ?? 'GET'} ${path.replace(/\?.*$/, '')} (${res.status}); log in (docker login writes the credentials hotocr reads) or set HOTOCR_REGISTRY_TOKEN.`,
      );
    if (res.status === 404)
      throw error('ARTIFACT_NOT_FOUND', `${registry} has nothing at ${path.replace(/\?.*$/, '')} (404).`);
    throw error(
      'REGISTRY_ERROR',
      `${registry} answered ${res.status} to ${init.method ?? 'GET'} ${path.replace(/\?.*$/, '')}.`,
    );
  }

  async #pushBlob(
    ref: OciReference,
    digest: string,
    size: number,
    body: () => NonNullable<RequestInit['body']>,
  ): Promise<void> {
    const repo = `/v2/${ref.repository}/blobs`;
    const head = await this.#request(ref.registry, `${repo}/${digest}`, { method: 'HEAD' }, [200, 404]);
    if (head.status === 200) return;
    const started = await this.#request(ref.registry, `${repo}/uploads/`, { method: 'POST' }, [202]);
    await discard(started);
    const location = started.headers.get('location');
    if (!location) throw error('REGISTRY_ERROR', `${ref.registry} started an upload without a Location.`);
    const target = new URL(location, `${this.#base(ref.registry)}/`);
    target.searchParams.set('digest', digest);
    const put = await this.#request(
      ref.registry,
      target.href,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: body(),
        duplex: 'half',
        timeoutMs: 600_000,
      } as RequestInit & { timeoutMs: number },
      [201],
    );
    await discard(put);
  }

  /**
   * Pushes a package file as an artifact and tags it. Returns the manifest's digest, which
   * names these exact bytes for as long as the registry keeps them.
   */
  async push(
    path: string,
    ref: OciReference,
    info: { name: string; version: string; file: string },
  ): Promise<{ digest: string; size: number }> {
    if (!ref.tag) throw error('REFERENCE_INVALID', `Push to a tag: ${formatReference(ref)} has none.`);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    const layerDigest = `sha256:${hash.digest('hex')}`;
    const { size } = await stat(path);
    await this.#pushBlob(
      ref,
      layerDigest,
      size,
      () => Readable.toWeb(createReadStream(path)) as ReadableStream,
    );
    const config = Buffer.from(JSON.stringify({ name: info.name, version: info.version }));
    const configDigest = sha256(config);
    await this.#pushBlob(ref, configDigest, config.length, () => config);
    const manifest: OciManifest = {
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: configDigest, size: config.length },
      layers: [
        {
          mediaType: PACKAGE_MEDIA_TYPE,
          digest: layerDigest,
          size,
          annotations: { 'org.opencontainers.image.title': info.file },
        },
      ],
      annotations: {
        [ANNOTATION_NAME]: info.name,
        [ANNOTATION_VERSION]: info.version,
        'org.opencontainers.image.created': new Date().toISOString(),
      },
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const res = await this.#request(
      ref.registry,
      `/v2/${ref.repository}/manifests/${ref.tag}`,
      { method: 'PUT', headers: { 'content-type': MANIFEST_MEDIA_TYPE }, body: bytes },
      [201],
    );
    await discard(res);
    return { digest: sha256(bytes), size };
  }

  /** The manifest a tag or digest names, checked against its digest. */
  async manifest(ref: OciReference): Promise<{ digest: string; manifest: OciManifest }> {
    const res = await this.#request(
      ref.registry,
      `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag}`,
      {
        headers: { accept: MANIFEST_MEDIA_TYPE },
      },
    );
    const bytes = await readLimited(res, READ_LIMITS.manifest, 'ARTIFACT_INVALID', 'The manifest');
    const digest = sha256(bytes);
    if (ref.digest && digest !== ref.digest)
      throw error(
        'ARTIFACT_INVALID',
        `The registry returned a manifest whose digest is ${digest}, not ${ref.digest}.`,
      );
    let manifest: OciManifest;
    try {
      manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as OciManifest;
    } catch (cause) {
      throw error('ARTIFACT_INVALID', `The manifest of ${formatReference(ref)} is not JSON.`, cause);
    }
    return { digest, manifest };
  }

  /**
   * Pulls the package an artifact holds into `out`, checking its digest and size on the
   * way; on any failure nothing is left at `out`. The package is then verified like any
   * other: the registry is trusted for nothing.
   */
  async pull(
    ref: OciReference,
    out: string,
    maxBytes: number,
  ): Promise<{ digest: string; layer: string; annotations: Record<string, string> }> {
    const { digest, manifest } = await this.manifest(ref);
    const layers = (manifest.layers ?? []).filter((l) => l.mediaType === PACKAGE_MEDIA_TYPE);
    if (layers.length !== 1)
      throw error(
        'ARTIFACT_INVALID',
        `${formatReference(ref)} is not a hotocr package: it needs exactly one layer of type ${PACKAGE_MEDIA_TYPE}.`,
      );
    const layer = layers[0]!;
    if (!/^sha256:[0-9a-f]{64}$/.test(layer.digest) || !Number.isSafeInteger(layer.size) || layer.size < 0)
      throw error('ARTIFACT_INVALID', `${formatReference(ref)} has a malformed layer descriptor.`);
    if (layer.size > maxBytes)
      throw error(
        'ARTIFACT_INVALID',
        `${formatReference(ref)} holds ${layer.size} bytes, over the ${maxBytes}-byte limit.`,
      );
    const res = await this.#request(ref.registry, `/v2/${ref.repository}/blobs/${layer.digest}`, {
      timeoutMs: 600_000,
      followRedirect: true,
    });
    const hash = createHash('sha256');
    let received = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        if (received > layer.size)
          return done(error('ARTIFACT_INVALID', 'The blob is longer than its descriptor says.'));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        check,
        createWriteStream(out),
      );
      const got = `sha256:${hash.digest('hex')}`;
      if (received !== layer.size || got !== layer.digest)
        throw error(
          'ARTIFACT_INVALID',
          `The blob's digest is ${got} (${received} bytes), not ${layer.digest} (${layer.size}).`,
        );
    } catch (cause) {
      await rm(out, { force: true });
      throw cause instanceof HotocrError
        ? cause
        : error('REGISTRY_UNREACHABLE', `The blob could not be downloaded: ${messageOf(cause)}`, cause);
    }
    return { digest, layer: layer.digest, annotations: manifest.annotations ?? {} };
  }

  /** Every tag of a repository. */
  async tags(registry: string, repository: string): Promise<string[]> {
    const res = await this.#request(registry, `/v2/${repository}/tags/list?n=10000`);
    const bytes = await readLimited(res, READ_LIMITS.tags, 'REGISTRY_ERROR', 'The tag list');
    let body: { tags?: unknown };
    try {
      body = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
    } catch (cause) {
      throw error('REGISTRY_ERROR', `The tag list of ${registry}/${repository} is not JSON.`, cause);
    }
    return Array.isArray(body.tags) ? body.tags.filter((t): t is string => typeof t === 'string') : [];
  }
}
