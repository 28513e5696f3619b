import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { type ErrorCode, HotocrError } from '../errors.js';
import {
  formatReference,
  type OciClient,
  type OciManifest,
  type OciReference,
  PACKAGE_MEDIA_TYPE,
} from '../oci/index.js';

/** Notifications make a source look at most this often. */
const NOTIFIED_LOOKS_MS = 1000;

export interface RegistrySourceOptions {
  /** The repository to follow; with a tag, only that tag (e.g. `stable`), else its highest semver tag. */
  readonly reference: OciReference;
  /** The model the repository is followed for (shown in the status). */
  readonly model?: string;
  readonly client: OciClient;
  /** Where pulled packages wait while they are verified and loaded; emptied at start. */
  readonly dir: string;
  /** How often the registry is asked when nothing pokes (default 30 s). */
  readonly pollMs?: number;
  /** Longest wait between tries while the registry fails (default 5 minutes). */
  readonly maxBackoffMs?: number;
  /** Largest package pulled. */
  readonly maxBytes: number;
  /**
   * Whether a package (by SHA-256: an artifact's layer digest is the package's) was handed
   * over before, accepted or refused: it is then not pulled again, across restarts.
   */
  readonly handled?: (sha256: string) => boolean;
  /** Hands a pulled package over; resolves once accepted, rejects with the refusal. */
  readonly submit: (path: string, artifact: { reference: string; digest: string }) => Promise<unknown>;
  /** What happened, for the log: pulls, refusals, registry failures and recoveries. */
  readonly onEvent?: (event: RegistrySourceEvent) => void;
}

export type RegistrySourceEvent =
  | { type: 'pulled'; reference: string; digest: string; ms: number }
  | { type: 'refused'; reference: string; digest: string; code: ErrorCode; message: string }
  | { type: 'unreachable'; code: ErrorCode; message: string; retryInMs: number }
  | { type: 'recovered' };

export interface RegistrySourceStatus {
  readonly following: string;
  /** The model the repository is followed for. */
  readonly model?: string;
  /** The digest last handed over (accepted or refused), if any. */
  readonly digest?: string;
  readonly lastCheck?: string;
  readonly lastError?: { code: ErrorCode; message: string; at: string };
  /** The last artifact refused, and why. */
  readonly lastRefused?: { digest: string; code: ErrorCode; message: string };
}

/**
 * Follows a repository in an OCI registry: asks it every `pollMs` (or at once when poked by
 * the registry's webhook) which artifact the followed tag names, pulls an artifact it has
 * not handed over before, and submits it like a file dropped into the watched folder, where
 * it is verified from scratch. A registry that fails is retried with doubling waits; the
 * version in service is never touched by that.
 */
export class RegistrySource {
  readonly #options: RegistrySourceOptions;
  /** Digests already handed over: accepted or refused, never pulled again. */
  readonly #done = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #failures = 0;
  #closed = false;
  /** When the last look started (ms, performance.now), and the look a notification deferred. */
  #lastLook = Number.NEGATIVE_INFINITY;
  #deferred: NodeJS.Timeout | undefined;
  #status: {
    digest?: string;
    lastCheck?: string;
    lastError?: { code: ErrorCode; message: string; at: string };
    lastRefused?: { digest: string; code: ErrorCode; message: string };
  } = {};

  private constructor(options: RegistrySourceOptions) {
    this.#options = options;
  }

  static async start(options: RegistrySourceOptions): Promise<RegistrySource> {
    await mkdir(options.dir, { recursive: true });
    for (const f of await readdir(options.dir)) await rm(join(options.dir, f), { force: true });
    const source = new RegistrySource(options);
    source.poke();
    return source;
  }

  get status(): RegistrySourceStatus {
    return {
      following: formatReference(this.#options.reference),
      ...(this.#options.model ? { model: this.#options.model } : {}),
      ...this.#status,
    };
  }

  /** Whether notifications about `repository` concern this source. */
  follows(repository: string): boolean {
    return repository === this.#options.reference.repository;
  }

  /**
   * A registry notification of a push to the followed repository: looks, at most once a
   * second (a burst of notifications is one look, or one more after the one running).
   */
  notified(): void {
    if (this.#closed || this.#deferred) return;
    const wait = this.#lastLook + NOTIFIED_LOOKS_MS - performance.now();
    if (wait <= 0) {
      this.poke();
      return;
    }
    this.#deferred = setTimeout(() => {
      this.#deferred = undefined;
      this.poke();
    }, wait);
    this.#deferred.unref();
  }

  /** Looks now: a check already running is followed by one more (at most one waits). */
  poke(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#lastLook = performance.now();
    this.#running = this.#check().finally(() => {
      this.#running = undefined;
      if (this.#closed) return;
      if (this.#again) {
        this.#again = false;
        this.poke();
        return;
      }
      this.#timer = setTimeout(() => this.poke(), this.#delay());
      this.#timer.unref();
    });
  }

  /**
   * When to look next: at the poll interval; after a failure sooner, 1 s then doubling, never
   * later than the poll interval or the longest backoff (a look a notification asked for that
   * met a registry not quite ready, or a blip, is retried within seconds, not a poll later).
   */
  #delay(): number {
    const poll = this.#options.pollMs ?? 30_000;
    if (this.#failures === 0) return poll;
    return Math.min(poll, this.#options.maxBackoffMs ?? 300_000, 1000 * 2 ** (this.#failures - 1));
  }

  /** The tag to take now: the followed one, or the highest semantic version. */
  async #target(): Promise<OciReference | undefined> {
    const ref = this.#options.reference;
    if (ref.tag || ref.digest) return ref;
    const tags = (await this.#options.client.tags(ref.registry, ref.repository)).filter((t) =>
      semver.valid(t),
    );
    const highest = tags.sort(semver.rcompare)[0];
    return highest ? { ...ref, tag: highest } : undefined;
  }

  async #check(): Promise<void> {
    const { client, submit, onEvent } = this.#options;
    let target: OciReference | undefined;
    let digest: string;
    let manifest: OciManifest;
    try {
      target = await this.#target();
      this.#status.lastCheck = new Date().toISOString();
      if (!target) return this.#recovered();
      ({ digest, manifest } = await client.manifest(target));
      this.#recovered();
    } catch (error) {
      return this.#failed(error);
    }
    if (this.#done.has(digest)) return;
    // The package's own SHA-256 is its layer's digest: handed over before, it is not pulled again.
    const layer = (manifest.layers ?? []).find((l) => l.mediaType === PACKAGE_MEDIA_TYPE)?.digest;
    const packageSha = layer?.startsWith('sha256:') ? layer.slice('sha256:'.length) : undefined;
    if (packageSha && this.#options.handled?.(packageSha)) {
      this.#done.add(digest);
      this.#status.digest = digest;
      return;
    }
    const reference = formatReference(target);
    const path = join(this.#options.dir, `${randomUUID()}.zip`);
    const started = performance.now();
    try {
      await client.pull({ ...target, digest }, path, this.#options.maxBytes);
    } catch (error) {
      if (error instanceof HotocrError && error.code === 'ARTIFACT_INVALID') {
        // Not a package at all: nothing to retry.
        this.#done.add(digest);
        this.#status.digest = digest;
        this.#status.lastRefused = { digest, code: error.code, message: error.message };
        onEvent?.({ type: 'refused', reference, digest, code: error.code, message: error.message });
        return;
      }
      return this.#failed(error);
    }
    onEvent?.({ type: 'pulled', reference, digest, ms: Math.round(performance.now() - started) });
    this.#done.add(digest);
    this.#status.digest = digest;
    try {
      await submit(path, { reference: `${reference}@${digest}`, digest });
      // Accepted: an earlier refusal is history, no longer the news.
      delete this.#status.lastRefused;
    } catch (error) {
      const e = error instanceof HotocrError ? error : new HotocrError('LOAD_FAILED', String(error));
      this.#status.lastRefused = { digest, code: e.code, message: e.message };
      onEvent?.({ type: 'refused', reference, digest, code: e.code, message: e.message });
    } finally {
      await rm(path, { force: true });
    }
  }

  #recovered(): void {
    if (this.#failures > 0) this.#options.onEvent?.({ type: 'recovered' });
    this.#failures = 0;
    delete this.#status.lastError;
  }

  #failed(error: unknown): void {
    this.#failures++;
    const e = error instanceof HotocrError ? error : new HotocrError('REGISTRY_ERROR', String(error));
    this.#status.lastError = { code: e.code, message: e.message, at: new Date().toISOString() };
    this.#options.onEvent?.({
      type: 'unreachable',
      code: e.code,
      message: e.message,
      retryInMs: this.#delay(),
    });
  }

  /** Stops following; a check under way finishes. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deferred);
    await this.#running;
  }
}
