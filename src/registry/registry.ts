import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { errnoOf, HotocrError, messageOf, PackageRejectedError } from '../errors.js';
import type { ServedModel } from '../loaders/index.js';
import { hashFile, type VerifiedPackage } from '../verify/index.js';
import type { RegistryEvent } from './events.js';
import {
  HANDLED_LIMIT,
  type PersistedState,
  type SplitRef,
  type StateStore,
  type VersionRef,
} from './state-store.js';
import { type Lease, ModelVersion } from './version.js';

export interface RegistryOptions {
  /** Verifies a package (SPEC section 2, steps 1-5), keeping the verified bytes. */
  readonly verify: (
    path: string,
    policy: {
      highestActivated: (name: string) => string | undefined;
      allowDowngrade: boolean;
      /** Another version already answers requests: the work may run at a lower priority. */
      serving: boolean;
      /** Fires when the registry stops: the verification ends at once, throwing its reason. */
      signal: AbortSignal;
      /**
       * Certificate validity and `expires` are judged at this time: when the version was first
       * accepted (a restart, a rollback), else now.
       */
      validAt?: Date;
    },
  ) => Promise<VerifiedPackage>;
  /**
   * Hashes the copy of an accepted package the registry keeps (default: on the hashing
   * thread, at its normal priority); `serving` as for `verify`.
   */
  readonly hashFile?: (path: string, context: { serving: boolean }) => Promise<string>;
  /**
   * Loads verified bytes into a model (step 6, graphs). `serving` says another version is
   * already answering requests, so the load may run at a lower priority than serving.
   */
  readonly load: (pkg: VerifiedPackage, context: { serving: boolean }) => Promise<ServedModel>;
  /** Reads the built-in image with a loaded model before it may serve (step 6, warm-up). */
  readonly warmUp: (model: ServedModel, pkg: VerifiedPackage) => Promise<void>;
  readonly store: StateStore;
  /** Where accepted packages are kept, by hash, to verify again after a restart. */
  readonly packagesDir: string;
  /** How many previously active versions stay loaded for an instant rollback (default 0). */
  readonly keepWarm?: number;
  /** How many model names may be served at once; a package of one more is refused (default: no limit). */
  readonly maxModels?: number;
}

export interface SubmitOptions {
  /** Where the package came from (`folder`, `upload`, `registry`, `restore`...), for reports. */
  readonly source: string;
  /** Switch to it once ready (default true); false stages it as ready. */
  readonly activate?: boolean;
  /** Accept a version lower than the highest activated for its name (an operator's act). */
  readonly allowDowngrade?: boolean;
  /** When the package was first accepted (a version loaded again): what its dates are judged at. */
  readonly acceptedAt?: Date;
  /**
   * The file is the caller's own temporary one, which nothing else writes (an upload, a pulled
   * artifact): once verified, it is moved into the packages folder rather than copied and
   * hashed again, and the caller finds it gone. A watched folder's files are never moved.
   */
  readonly owned?: boolean;
  /** The model name the package must carry (a repository followed for one model). */
  readonly expectName?: string;
}

type Listener = (event: RegistryEvent) => void;

/** What a restart found of the persisted routing of each model. */
export interface RestoredRouting {
  /**
   * Per model name: the split whose every version loaded again (empty when there was none,
   * or it was dropped), and the pinning switch as PUT /v1/routing last set it, if it did.
   */
  readonly splits: Readonly<
    Record<
      string,
      { readonly split: readonly { version: string; weight: number }[]; readonly allowPinning?: boolean }
    >
  >;
  /** Splits dropped whole because a version of theirs did not verify or load again. */
  readonly dropped: readonly { name: string; reason: string }[];
}

/** Sources that hand packages over unasked: what they handed over once is not taken again. */
const AUTOMATIC = new Set(['folder', 'registry']);

const now = () => new Date().toISOString();

/**
 * Every model version the server knows, and which one of each name is active. Packages are
 * verified and loaded one at a time; the switch is one assignment; a version that fails at
 * any step is recorded as failed and never touches the one in service.
 */
export class Registry {
  readonly #options: RegistryOptions;
  readonly #versions = new Map<string, Map<string, ModelVersion>>();
  readonly #active = new Map<string, ModelVersion>();
  readonly #listeners = new Set<Listener>();
  #state: PersistedState;
  #queue: Promise<unknown> = Promise.resolve();
  /** Writes of the state file, one after another. */
  #writes: Promise<unknown> = Promise.resolve();
  #restoredRouting: RestoredRouting = { splits: {}, dropped: [] };
  #closed = false;
  /** Aborted by {@link stopTaking}: a verification under way ends within a read. */
  readonly #stopping = new AbortController();

  private constructor(options: RegistryOptions, state: PersistedState) {
    this.#options = options;
    this.#state = state;
  }

  static async create(options: RegistryOptions): Promise<Registry> {
    return new Registry(options, await options.store.read());
  }

  /** Subscribes to every event; returns the unsubscribe function. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: RegistryEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own; the registry goes on.
      }
    }
  }

  /** Reports an event of the server's own (the trust store read again) on the registry's stream. */
  announce(event: Extract<RegistryEvent, { type: 'trust' }>): void {
    this.#emit(event);
  }

  /** Every version, grouped by name, newest first. */
  versions(): ModelVersion[] {
    return [...this.#versions.values()].flatMap((m) =>
      [...m.values()].sort((a, b) => semver.rcompare(a.version, b.version)),
    );
  }

  active(name?: string): ModelVersion | undefined {
    if (name !== undefined) return this.#active.get(name);
    return this.#active.values().next().value;
  }

  /**
   * A lease on the active version of `name` (the first model when omitted), or on a given
   * ready or active version. Undefined when there is none to serve.
   */
  lease(name?: string, version?: string): Lease | undefined {
    if (version !== undefined && name !== undefined) return this.#versions.get(name)?.get(version)?.acquire();
    return this.active(name)?.acquire();
  }

  /** True once the registry stops taking packages (the server is stopping). */
  get stopping(): boolean {
    return this.#closed;
  }

  /** Whether a package with this SHA-256 was handed over before, accepted or refused. */
  isHandled(sha256: string): boolean {
    return this.#state.handled[sha256] !== undefined;
  }

  /**
   * What a source that hands packages over unasked (the watched folder, a followed registry)
   * calls: a package handed over before (the same SHA-256), accepted or refused, is not taken
   * again, across restarts; anything else is submitted. Undefined when skipped.
   */
  offer(path: string, options: SubmitOptions): Promise<ModelVersion | undefined> {
    const run = this.#queue.then(async () => {
      if (this.#closed) throw new HotocrError('REGISTRY_CLOSED', 'The server is stopping.');
      let sha256: string;
      try {
        sha256 = await (this.#options.hashFile ?? ((p: string) => hashFile(p)))(path, {
          serving: this.#active.size > 0,
        });
      } catch {
        // Unreadable: the verification says why, with its own code.
        return this.#submit(path, options);
      }
      const seen = this.#state.handled[sha256];
      if (!seen) return this.#submit(path, options);
      this.#emit({
        type: 'skipped',
        ts: now(),
        path,
        source: options.source,
        sha256,
        reason: `handed over before (${seen.outcome}${seen.code ? ` ${seen.code}` : ''}, ${seen.at}); not taken again`,
      });
      return undefined;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Verifies, loads and warms up the package at `path`, then (unless `activate` is false)
   * switches to it. One submission runs at a time; the others wait their turn. Throws the
   * refusal (a {@link PackageRejectedError}) after reporting it; the active version is untouched.
   */
  submit(path: string, options: SubmitOptions): Promise<ModelVersion> {
    const run = this.#queue.then(() => this.#submit(path, options));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #submit(path: string, options: SubmitOptions): Promise<ModelVersion> {
    if (this.#closed) throw new HotocrError('REGISTRY_CLOSED', 'The server is stopping.');
    const { source } = options;
    this.#emit({ type: 'package-seen', ts: now(), path, source });
    this.#emit({ type: 'verifying', ts: now(), path, source });
    let pkg: VerifiedPackage;
    const verifyStarted = performance.now();
    try {
      pkg = await this.#options.verify(path, {
        allowDowngrade: options.allowDowngrade ?? false,
        serving: this.#active.size > 0,
        highestActivated: (name) => this.#state.highest[name],
        signal: this.#stopping.signal,
        ...(options.acceptedAt ? { validAt: options.acceptedAt } : {}),
      });
    } catch (error) {
      if (error instanceof PackageRejectedError) {
        const sha256 = typeof error.details.sha256 === 'string' ? error.details.sha256 : undefined;
        this.#rejected(path, source, error, {
          ...(sha256 ? { sha256 } : {}),
          ...(error.details.legacy === true ? { legacy: true } : {}),
        });
        if (sha256 && AUTOMATIC.has(source)) await this.#handled(sha256, 'refused', error.code);
      }
      throw error;
    }
    const acceptedAt = options.acceptedAt ?? new Date();
    const { name, version } = pkg.manifest;
    if (options.expectName !== undefined && name !== options.expectName) {
      const error = new HotocrError(
        'MODEL_NAME_MISMATCH',
        `The package is model ${JSON.stringify(name)}, but it came from a repository followed for ${JSON.stringify(options.expectName)}; push it to its own model's repository.`,
      );
      this.#rejected(path, source, error, { sha256: pkg.sha256, name, version });
      if (AUTOMATIC.has(source)) await this.#handled(pkg.sha256, 'refused', error.code);
      throw error;
    }
    const limit = this.#options.maxModels;
    const served = this.#modelNames();
    if (limit !== undefined && !served.has(name) && served.size >= limit) {
      // Not recorded as handled: once a model is retired, the same package may come again.
      const error = new HotocrError(
        'MODEL_LIMIT',
        `The server serves ${served.size} models (${[...served].sort().join(', ')}), its limit (--max-models ${limit}); retire one (DELETE /v1/models/{name}) before adding ${JSON.stringify(name)}.`,
      );
      this.#rejected(path, source, error, { sha256: pkg.sha256, name, version });
      throw error;
    }
    this.#emit({
      type: 'verified',
      ts: now(),
      path,
      source,
      name,
      version,
      sha256: pkg.sha256,
      signer: pkg.signer,
      ...(pkg.manifest.expires ? { expires: pkg.manifest.expires } : {}),
      verifyMs: Math.round(performance.now() - verifyStarted),
      ...(pkg.legacy ? { legacy: true as const } : {}),
    });
    if (AUTOMATIC.has(source)) await this.#handled(pkg.sha256, 'accepted');
    const existing = this.#versions.get(name)?.get(version);
    if (existing && existing.state !== 'failed' && existing.state !== 'released') {
      if (existing.sha256 === pkg.sha256) {
        if ((options.activate ?? true) && existing.state === 'ready') await this.activate(name, version);
        return existing;
      }
      const error = new HotocrError(
        'VERSION_EXISTS',
        `${name} ${version} is already loaded with different contents; publish it under a new version.`,
      );
      this.#rejected(path, source, error, { sha256: pkg.sha256, name, version });
      throw error;
    }
    // A version once activated with other bytes is that version for good.
    const activatedAs = (this.#state.history[name] ?? []).find((h) => h.version === version);
    if (activatedAs && activatedAs.sha256 !== pkg.sha256) {
      const error = new HotocrError(
        'VERSION_EXISTS',
        `${name} ${version} was activated before with different contents (sha256 ${activatedAs.sha256.slice(0, 12)}...); publish it under a new version.`,
      );
      this.#rejected(path, source, error, { sha256: pkg.sha256, name, version });
      throw error;
    }
    // The kept copy (for restarts) is made while the graphs load, off the critical path.
    const packagePath = join(this.#options.packagesDir, `${pkg.sha256}.zip`);
    const copied = this.#keepCopy(path, pkg.sha256, {
      serving: this.#active.size > 0,
      owned: options.owned ?? false,
    });
    copied.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
    const v = new ModelVersion(
      {
        name,
        version,
        sha256: pkg.sha256,
        source,
        signer: pkg.signer,
        manifest: pkg.manifest,
        packagePath,
        acceptedAt,
      },
      (released) =>
        this.#emit({ type: 'released', ts: now(), name: released.name, version: released.version }),
    );
    if (!this.#versions.has(name)) this.#versions.set(name, new Map());
    this.#versions.get(name)!.set(version, v);
    this.#emit({ type: 'loading', ts: now(), name, version, sha256: pkg.sha256 });
    const started = performance.now();
    // One load at a time: what the process grows by from here to the end of the warm-up is
    // this version's (the sessions it opened, the arenas its first reads allocated).
    const rssBefore = process.memoryUsage.rss();
    let model: ServedModel | undefined;
    let warmupStarted = started;
    try {
      model = await this.#options.load(pkg, { serving: this.#active.size > 0 });
      warmupStarted = performance.now();
      await this.#options.warmUp(model, pkg);
      await model.ready?.();
      await copied;
    } catch (error) {
      await model?.release();
      const code = error instanceof HotocrError ? error.code : 'LOAD_FAILED';
      const message = error instanceof Error ? error.message : String(error);
      v.fail(code, message);
      // Its kept copy is not needed: wait for it to land, then let the pruning remove it.
      await copied.catch(() => {});
      await this.#prunePackages();
      this.#emit({ type: 'failed', ts: now(), name, version, sha256: pkg.sha256, code, message });
      throw error instanceof HotocrError ? error : new HotocrError('LOAD_FAILED', message, { cause: error });
    }
    v.memory = {
      loadBytes: Math.max(0, process.memoryUsage.rss() - rssBefore),
      sharedSessions: model.sharedSessions?.() ?? 0,
    };
    v.loaded(model);
    this.#emit({
      type: 'ready',
      ts: now(),
      name,
      version,
      sha256: pkg.sha256,
      loader: model.loader,
      loadMs: Math.round(warmupStarted - started),
      warmupMs: Math.round(performance.now() - warmupStarted),
      memoryBytes: v.memory.loadBytes,
      sharedSessions: v.memory.sharedSessions,
    });
    if (options.activate ?? true) await this.activate(name, version);
    return v;
  }

  #rejected(
    path: string,
    source: string,
    error: HotocrError,
    extra: { sha256?: string; name?: string; version?: string; legacy?: true },
  ): void {
    this.#emit({
      type: 'rejected',
      ts: now(),
      path,
      source,
      code: error.code,
      message: error.message,
      ...extra,
    });
  }

  /**
   * Keeps the verified package as `<sha256>.zip` in the packages folder, for restarts and
   * rollbacks. A file the caller owns is moved there: it is the file just verified, and
   * nothing else writes it. Any other is copied and the copy hashed again, since its source
   * (a watched folder) may change between the verification and the copy.
   */
  async #keepCopy(
    path: string,
    sha256: string,
    context: { serving: boolean; owned: boolean },
  ): Promise<string> {
    await mkdir(this.#options.packagesDir, { recursive: true });
    const target = join(this.#options.packagesDir, `${sha256}.zip`);
    if (target === path) return target;
    if (context.owned) {
      try {
        await rename(path, target);
        return target;
      } catch (error) {
        // Another file system: copied, as any other file.
        if (errnoOf(error) !== 'EXDEV') throw error;
      }
    }
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      await copyFile(path, tmp);
    } catch (error) {
      await rm(tmp, { force: true });
      const code = errnoOf(error);
      if (code === 'ENOSPC' || code === 'EDQUOT')
        throw new HotocrError(
          'STORAGE_FULL',
          `No space left to keep a copy of the package in ${this.#options.packagesDir}; free some and send it again.`,
          { cause: error },
        );
      throw error;
    }
    const hash = this.#options.hashFile ?? ((p: string) => hashFile(p));
    if ((await hash(tmp, context)) !== sha256) {
      await rm(tmp, { force: true });
      throw new PackageRejectedError(
        'ARCHIVE_INVALID',
        `${path} changed while it was being loaded; it will be looked at again.`,
      );
    }
    await rename(tmp, target);
    return target;
  }

  /** Remembers a package handed over by a source that hands them over unasked. */
  async #handled(sha256: string, outcome: 'accepted' | 'refused', code?: string): Promise<void> {
    await this.#update((state) => {
      delete state.handled[sha256];
      state.handled[sha256] = { at: now(), outcome, ...(code ? { code } : {}) };
      const all = Object.keys(state.handled);
      for (const old of all.slice(0, Math.max(0, all.length - HANDLED_LIMIT))) delete state.handled[old];
    }).catch(() => {
      // Not remembering it only means it may be looked at again; the package's fate stands.
    });
  }

  /**
   * Changes the state file, one change at a time: `change` edits a copy, which is written,
   * then kept. A write that fails leaves the state as it was and throws STORAGE_FULL (no
   * space) or STATE_WRITE_FAILED.
   */
  #update(change: (state: PersistedState) => void): Promise<void> {
    const run = this.#writes.then(async () => {
      const state = structuredClone(this.#state);
      change(state);
      try {
        await this.#options.store.write(state);
      } catch (error) {
        const code = errnoOf(error);
        throw code === 'ENOSPC' || code === 'EDQUOT'
          ? new HotocrError(
              'STORAGE_FULL',
              `No space left to write ${this.#options.store.path}; nothing was switched. Free some and try again.`,
              { cause: error },
            )
          : new HotocrError(
              'STATE_WRITE_FAILED',
              `Cannot write ${this.#options.store.path} (${messageOf(error)}); nothing was switched.`,
              { cause: error },
            );
      }
      this.#state = state;
    });
    this.#writes = run.catch(() => {});
    return run;
  }

  /**
   * Switches `name` to a version in one step; the previous one drains (or stays warm). A
   * version not loaded but kept (one activated before, in the packages folder) is verified
   * and loaded again first. The choice is persisted before the switch: if it cannot be, the
   * version in service stays, and the error says why.
   */
  async activate(name: string, version: string): Promise<void> {
    let v = this.#versions.get(name)?.get(version);
    if (!v || v.state === 'released' || v.state === 'failed') {
      const kept = [...(this.#state.history[name] ?? [])].reverse().find((h) => h.version === version);
      const there = kept
        ? await stat(kept.package).then(
            (s) => s.isFile(),
            () => false,
          )
        : false;
      if (!kept || !there)
        throw new HotocrError(
          'VERSION_NOT_FOUND',
          `${name} ${version} is neither loaded nor kept in the packages folder; upload it again.`,
        );
      v = await this.submit(kept.package, {
        source: 'activate',
        activate: false,
        allowDowngrade: true,
        ...(kept.acceptedAt ? { acceptedAt: new Date(kept.acceptedAt) } : {}),
      });
    }
    if (v.state === 'active') return;
    if (v.state !== 'ready')
      throw new HotocrError(
        'VERSION_NOT_READY',
        `${name} ${version} is ${v.state}, not ready; only a ready version can be activated.`,
      );
    const started = performance.now();
    const previous = this.#active.get(name);
    const highest = this.#state.highest[name];
    const below = highest && semver.lt(v.version, highest) ? highest : undefined;
    // Persisted before it is switched and announced: whoever sees "activated" can rely on a
    // restart resuming it, and a choice that cannot be kept is not made.
    try {
      await this.#persistActivation(v);
    } catch (error) {
      const e =
        error instanceof HotocrError ? error : new HotocrError('STATE_WRITE_FAILED', messageOf(error));
      this.#emit({ type: 'activation-failed', ts: now(), name, version, code: e.code, message: e.message });
      throw e;
    }
    this.#active.set(name, v);
    v.serving = true;
    if (previous) previous.serving = false;
    this.#emit({
      type: 'activated',
      ts: now(),
      name,
      version,
      ...(previous ? { previous: previous.version } : {}),
      ...(below ? { below } : {}),
      switchMs: Math.round((performance.now() - started) * 100) / 100,
    });
    this.#trimWarm(name);
    await this.#prunePackages();
  }

  /**
   * Deletes kept packages nothing can ask for again: neither active nor in the history of a
   * model (what a restart or a rollback reloads), nor a version loaded now; and temporary
   * copies left by an earlier process. Without it the folder grows by a package per swap.
   * A failure here is not the swap's: it is left for the next time.
   */
  async #prunePackages(): Promise<void> {
    const dir = this.#options.packagesDir;
    const keep = new Set<string>();
    for (const ref of Object.values(this.#state.active)) keep.add(ref.sha256);
    for (const refs of Object.values(this.#state.history)) for (const ref of refs) keep.add(ref.sha256);
    for (const { split } of Object.values(this.#state.routing)) for (const ref of split) keep.add(ref.sha256);
    for (const v of this.versions()) if (v.state !== 'released' && v.state !== 'failed') keep.add(v.sha256);
    let files: string[];
    try {
      files = await readdir(dir);
    } catch {
      return;
    }
    await Promise.all(
      files.map(async (file) => {
        const m = /^([0-9a-f]{64})\.zip(?:\.(\d+)\.tmp)?$/.exec(file);
        if (!m) return;
        const stale = m[2] !== undefined ? Number(m[2]) !== process.pid : !keep.has(m[1]!);
        if (stale) await rm(join(dir, file), { force: true }).catch(() => {});
      }),
    );
  }

  /**
   * Retires every version whose package no longer verifies (`stillTrusted` says: its signer
   * removed from the trust store, past its `Not-After`, or denied). A model whose active
   * version is one switches to its highest version that still verifies, loaded or kept (an
   * operator's act: it may be lower); retired versions not active are unloaded. A model with
   * no trusted version left keeps serving and is reported `refused`.
   */
  async retire(
    stillTrusted: (packagePath: string, acceptedAt: Date) => Promise<boolean>,
  ): Promise<{ name: string; retired: string[]; active: string | null; refused?: string }[]> {
    const report: { name: string; retired: string[]; active: string | null; refused?: string }[] = [];
    const names = new Set([...this.#active.keys(), ...this.versions().map((v) => v.name)]);
    for (const name of names) {
      const loaded = this.versions().filter(
        (v) => v.name === name && (v.state === 'ready' || v.state === 'active'),
      );
      const trusted = new Map<string, boolean>();
      for (const v of loaded) trusted.set(v.version, await stillTrusted(v.packagePath, v.acceptedAt));
      const retired = loaded.filter((v) => !trusted.get(v.version)).map((v) => v.version);
      if (retired.length === 0) continue;
      const active = this.#active.get(name);
      let refused: string | undefined;
      if (active && !trusted.get(active.version)) {
        const kept = (this.#state.history[name] ?? []).filter(
          (h) => !loaded.some((v) => v.version === h.version),
        );
        const candidates: { version: string; ref?: VersionRef }[] = [
          ...loaded.filter((v) => trusted.get(v.version)).map((v) => ({ version: v.version })),
          ...kept.map((ref) => ({ version: ref.version, ref })),
        ].sort((a, b) => semver.rcompare(a.version, b.version));
        let next: string | undefined;
        for (const { version, ref } of candidates) {
          const ok =
            !ref ||
            (await stillTrusted(ref.package, new Date(ref.acceptedAt ?? Date.now())).catch(() => false));
          if (ok) {
            next = version;
            break;
          }
        }
        if (next) await this.activate(name, next);
        else
          refused = `no version of ${name} still verifies under the trust store; ${active.version} keeps serving until a package signed by a trusted key arrives`;
      }
      for (const version of retired) {
        const v = this.#versions.get(name)?.get(version);
        if (v && this.#active.get(name) !== v) await this.#drain(v);
      }
      const nowActive = this.#active.get(name)?.version ?? null;
      this.#emit({ type: 'retired', ts: now(), name, versions: retired, active: nowActive });
      report.push({ name, retired, active: nowActive, ...(refused ? { refused } : {}) });
    }
    return report;
  }

  /** Back to the version that was active before the current one: instantly if kept warm, else loaded again. */
  async rollback(name: string): Promise<ModelVersion> {
    const current = this.#active.get(name);
    if (!current)
      throw new HotocrError('VERSION_NOT_FOUND', `${name} has no active version to roll back from.`);
    const history = this.#state.history[name] ?? [];
    const previous = [...history].reverse().find((h) => h.version !== current.version);
    if (!previous)
      throw new HotocrError('NO_PREVIOUS_VERSION', `${name} has no earlier version to roll back to.`);
    const warm = this.#versions.get(name)?.get(previous.version);
    if (warm?.state === 'ready') {
      await this.activate(name, previous.version);
      return warm;
    }
    return this.submit(previous.package, {
      source: 'rollback',
      allowDowngrade: true,
      ...(previous.acceptedAt ? { acceptedAt: new Date(previous.acceptedAt) } : {}),
    });
  }

  /** Unloads a version that is not active: it drains, then its sessions are released. */
  async unload(name: string, version: string): Promise<void> {
    const v = this.#versions.get(name)?.get(version);
    if (!v) throw new HotocrError('VERSION_NOT_FOUND', `${name} ${version} is not loaded.`);
    if (this.#active.get(name) === v) {
      throw new HotocrError(
        'VERSION_ACTIVE',
        `${name} ${version} is active; activate another version or roll back first.`,
      );
    }
    await this.#drain(v);
  }

  /**
   * Retires a model name: its versions drain (in-flight requests finish) and are released,
   * and everything kept of it is forgotten (active version, history, highest version, split,
   * handled packages), so the name can be used again from scratch, a lower version included.
   * Persisted first: if that fails, the model keeps serving. Waits for submissions under way.
   */
  removeModel(name: string): Promise<{ name: string; versions: string[] }> {
    const run = this.#queue.then(async () => {
      if (!this.knows(name))
        throw new HotocrError(
          'MODEL_NOT_FOUND',
          `No model is named ${JSON.stringify(name)}; GET /v1/models lists the models this server knows.`,
        );
      const loaded = [...(this.#versions.get(name)?.values() ?? [])];
      const shas = new Set([
        ...loaded.map((v) => v.sha256),
        ...(this.#state.history[name] ?? []).map((h) => h.sha256),
        ...(this.#state.routing[name]?.split ?? []).map((s) => s.sha256),
      ]);
      const active = this.#state.active[name];
      if (active) shas.add(active.sha256);
      await this.#update((state) => {
        delete state.active[name];
        delete state.history[name];
        delete state.highest[name];
        delete state.routing[name];
        for (const sha of shas) delete state.handled[sha];
      });
      const current = this.#active.get(name);
      this.#active.delete(name);
      if (current) current.serving = false;
      this.#versions.delete(name);
      const versions = loaded.map((v) => v.version).sort(semver.rcompare);
      this.#emit({ type: 'removed', ts: now(), name, versions });
      await Promise.all(loaded.map((v) => this.#drain(v)));
      await this.#prunePackages();
      return { name, versions };
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #drain(v: ModelVersion): Promise<void> {
    if (v.state === 'released' || v.state === 'failed') return;
    this.#emit({ type: 'draining', ts: now(), name: v.name, version: v.version, inflight: v.inflight });
    await v.drain();
  }

  /** Keeps the `keepWarm` most recent non-active ready versions of `name`; drains the rest. */
  #trimWarm(name: string): void {
    const keep = this.#options.keepWarm ?? 0;
    const ready = [...(this.#versions.get(name)?.values() ?? [])]
      .filter((v) => v.state === 'ready')
      .sort((a, b) => (b.loadedAt?.getTime() ?? 0) - (a.loadedAt?.getTime() ?? 0));
    const history = (this.#state.history[name] ?? []).map((h) => h.version);
    // Warm means "was active before": staged versions never activated are left alone.
    const previously = ready.filter((v) => history.includes(v.version));
    for (const v of previously.slice(keep)) void this.#drain(v);
  }

  async #persistActivation(v: ModelVersion): Promise<void> {
    const ref = refOf(v);
    await this.#update((state) => {
      state.active[v.name] = ref;
      const history = (state.history[v.name] ?? []).filter((h) => h.sha256 !== v.sha256);
      history.push(ref);
      state.history[v.name] = history.slice(-10);
      // One highest version per model, whatever the channel; an operator's move back keeps it.
      const highest = state.highest[v.name];
      if (!highest || semver.gt(v.version, highest)) state.highest[v.name] = v.version;
    });
  }

  /**
   * Persists a model's traffic split (or its end, with an empty one) and the pinning switch,
   * with what a restart needs to load the split's versions again.
   */
  async saveRouting(
    name: string,
    split: readonly { version: string; weight: number }[],
    allowPinning?: boolean,
  ): Promise<void> {
    const refs: SplitRef[] = split.flatMap(({ version, weight }) => {
      const v = this.#versions.get(name)?.get(version);
      return v ? [{ ...refOf(v), weight }] : [];
    });
    const kept = this.#state.routing[name];
    const pinning = allowPinning ?? kept?.allowPinning;
    const unchanged =
      JSON.stringify(kept?.split ?? []) === JSON.stringify(refs) && pinning === kept?.allowPinning;
    if (unchanged) return;
    await this.#update((state) => {
      if (refs.length > 0 || pinning !== undefined)
        state.routing[name] = { split: refs, ...(pinning !== undefined ? { allowPinning: pinning } : {}) };
      else delete state.routing[name];
    });
  }

  /** What the last restart found of the persisted traffic splits (see {@link restore}). */
  restoredRouting(): RestoredRouting {
    return this.#restoredRouting;
  }

  /**
   * After a restart: verifies and loads again the version that was active for each name;
   * if that fails, the most recent other version from the history that does. Returns what
   * happened, for the log.
   */
  async restore(): Promise<{ name: string; version?: string; fellBackFrom?: string; error?: string }[]> {
    const report: { name: string; version?: string; fellBackFrom?: string; error?: string }[] = [];
    for (const [name, ref] of Object.entries(this.#state.active)) {
      const candidates = [
        ref,
        ...[...(this.#state.history[name] ?? [])].reverse().filter((h) => h.sha256 !== ref.sha256),
      ];
      let restored: ModelVersion | undefined;
      let firstError: string | undefined;
      for (const c of candidates) {
        try {
          restored = await this.submit(c.package, {
            source: 'restore',
            allowDowngrade: true,
            ...(c.acceptedAt ? { acceptedAt: new Date(c.acceptedAt) } : {}),
          });
          break;
        } catch (error) {
          firstError ??=
            error instanceof Error
              ? `${(error as HotocrError).code ?? 'ERROR'}: ${error.message}`
              : String(error);
        }
      }
      if (restored) {
        report.push({
          name,
          version: restored.version,
          ...(restored.sha256 !== ref.sha256 ? { fellBackFrom: ref.version, error: firstError } : {}),
        });
      } else report.push({ name, ...(firstError ? { error: firstError } : {}) });
    }
    await this.#restoreRouting();
    await this.#prunePackages();
    return report;
  }

  /**
   * Loads again the versions of each persisted traffic split. A split whose versions do not
   * all verify and load, or that no longer includes its model's active version, is dropped whole.
   */
  async #restoreRouting(): Promise<void> {
    const splits: Record<string, { split: { version: string; weight: number }[]; allowPinning?: boolean }> =
      {};
    const dropped: { name: string; reason: string }[] = [];
    // A pinning switch from before it was kept per model applies to every model.
    const legacyPinning = this.#state.allowPinning;
    for (const [name, { split, allowPinning }] of Object.entries(this.#state.routing)) {
      const pinning = allowPinning ?? legacyPinning;
      let reason: string | undefined;
      for (const ref of split) {
        if (this.#versions.get(name)?.get(ref.version)?.sha256 === ref.sha256) continue;
        try {
          await this.submit(ref.package, {
            source: 'restore',
            activate: false,
            allowDowngrade: true,
            ...(ref.acceptedAt ? { acceptedAt: new Date(ref.acceptedAt) } : {}),
          });
        } catch (error) {
          reason = `${name} ${ref.version} of the split did not load again (${error instanceof HotocrError ? `${error.code}: ` : ''}${messageOf(error)})`;
          break;
        }
      }
      const active = this.#active.get(name)?.version;
      if (!reason && split.length > 0 && !split.some((s) => s.version === active))
        reason = `the split does not include ${name}'s active version ${active ?? '(none)'}`;
      if (reason) {
        dropped.push({ name, reason });
        await this.#update((state) => {
          const entry = state.routing[name];
          if (entry?.allowPinning === undefined) delete state.routing[name];
          else state.routing[name] = { split: [], allowPinning: entry.allowPinning };
        }).catch(() => {});
      }
      splits[name] = {
        split: reason ? [] : split.map(({ version, weight }) => ({ version, weight })),
        ...(pinning !== undefined ? { allowPinning: pinning } : {}),
      };
    }
    if (legacyPinning !== undefined)
      for (const name of Object.keys(this.#state.active))
        splits[name] ??= { split: [], allowPinning: legacyPinning };
    this.#restoredRouting = { splits, dropped };
  }

  /** Names that hold a place under --max-models: with a version loading, loaded or active. */
  #modelNames(): Set<string> {
    const names = new Set(Object.keys(this.#state.active));
    for (const [name, versions] of this.#versions)
      for (const v of versions.values()) if (v.state !== 'released' && v.state !== 'failed') names.add(name);
    return names;
  }

  /** Whether `name` is a model this server knows: loaded, active, or kept in the history. */
  knows(name: string): boolean {
    return (
      this.#versions.has(name) ||
      this.#state.active[name] !== undefined ||
      this.#state.history[name] !== undefined
    );
  }

  /**
   * Stops taking packages: those waiting their turn are refused with REGISTRY_CLOSED, and a
   * verification under way is stopped (within one read of the hashing thread). A load under
   * way finishes. Loaded versions keep serving until {@link close}. Safe to call twice.
   */
  stopTaking(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopping.abort(
      new HotocrError(
        'REGISTRY_CLOSED',
        'The server is stopping; the package was not verified, and may be sent again.',
      ),
    );
  }

  /**
   * {@link stopTaking}, then releases every version once its in-flight leases end. Safe to call
   * twice.
   */
  async close(): Promise<void> {
    this.stopTaking();
    await this.#queue;
    await this.#writes;
    await Promise.all(this.versions().map((v) => v.drain()));
  }
}

/** What the state file keeps of a version: enough to verify and load it again. */
function refOf(v: ModelVersion): VersionRef {
  return {
    version: v.version,
    sha256: v.sha256,
    package: v.packagePath,
    acceptedAt: v.acceptedAt.toISOString(),
  };
}
