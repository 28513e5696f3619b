import type { ErrorCode } from '../errors.js';
import type { ServedModel } from '../loaders/index.js';
import type { Manifest } from '../package/index.js';
import type { SignerInfo } from '../verify/index.js';

export type VersionState = 'loading' | 'ready' | 'active' | 'draining' | 'released' | 'failed';

/** A request's hold on the version it runs on. Returning it twice is harmless. */
export interface Lease {
  readonly version: ModelVersion;
  readonly model: ServedModel;
  release(): void;
}

/**
 * One loaded (or loading, or failed) version of a model. Requests take leases on it; once it
 * is draining, its sessions are released exactly once, when the last lease is returned, and
 * no lease can be taken any more.
 */
export class ModelVersion {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly source: string;
  readonly signer: SignerInfo;
  readonly manifest: Manifest;
  /** Where the verified package is kept, to verify again after a restart or to reload on rollback. */
  readonly packagePath: string;
  /** When the package was accepted: what a restart judges certificate dates and `expires` at. */
  readonly acceptedAt: Date;
  #state: VersionState = 'loading';
  #model: ServedModel | undefined;
  #leases = 0;
  #released: Promise<void> | undefined;
  #resolveReleased: () => void = () => {};
  readonly #whenReleased = new Promise<void>((resolve) => {
    this.#resolveReleased = resolve;
  });
  #onReleased: (v: ModelVersion) => void;
  loadedAt: Date | undefined;
  /** The loader that made the model, and what it said of it; kept after release. */
  loader: ({ name: string } & ServedModel['metadata']) | undefined;
  failure: { code: ErrorCode; message: string } | undefined;
  /**
   * What loading it cost in memory: how much the process grew (resident set) from the start
   * of its load to the end of its warm-up, and how many graph sessions it shares with another
   * loaded version (whose growth counted them). Set once it is ready.
   */
  memory: { loadBytes: number; sharedSessions: number } | undefined;

  constructor(
    init: {
      name: string;
      version: string;
      sha256: string;
      source: string;
      signer: SignerInfo;
      manifest: Manifest;
      packagePath: string;
      acceptedAt: Date;
    },
    onReleased: (v: ModelVersion) => void,
  ) {
    this.name = init.name;
    this.version = init.version;
    this.sha256 = init.sha256;
    this.source = init.source;
    this.signer = init.signer;
    this.manifest = init.manifest;
    this.packagePath = init.packagePath;
    this.acceptedAt = init.acceptedAt;
    this.#onReleased = onReleased;
  }

  get state(): VersionState {
    return this.#state;
  }

  /** Requests running on this version now. */
  get inflight(): number {
    return this.#leases;
  }

  get model(): ServedModel | undefined {
    return this.#model;
  }

  /** loading → ready, with the model that now serves. */
  loaded(model: ServedModel): void {
    this.#model = model;
    this.loader = { ...model.metadata, name: model.loader };
    this.loadedAt = new Date();
    this.#state = 'ready';
  }

  /** loading → failed. */
  fail(code: ErrorCode, message: string): void {
    this.failure = { code, message };
    this.#state = 'failed';
  }

  /** ready → active, or active → ready (kept warm). */
  set serving(active: boolean) {
    if (this.#state === 'ready' || this.#state === 'active') this.#state = active ? 'active' : 'ready';
  }

  /** A lease, or undefined when this version cannot serve (not loaded, draining or released). */
  acquire(): Lease | undefined {
    if ((this.#state !== 'active' && this.#state !== 'ready') || !this.#model) return undefined;
    this.#leases++;
    let returned = false;
    return {
      version: this,
      model: this.#model,
      release: () => {
        if (returned) return;
        returned = true;
        this.#leases--;
        if (this.#state === 'draining' && this.#leases === 0) void this.#release();
      },
    };
  }

  /**
   * Stops new leases; releases the sessions now if none is held, or when the last one is
   * returned. Resolves once released.
   */
  drain(): Promise<void> {
    if (this.#state === 'failed') return Promise.resolve();
    if (this.#state !== 'released') this.#state = 'draining';
    if (this.#leases === 0) return this.#release();
    return this.#whenReleased;
  }

  #release(): Promise<void> {
    this.#released ??= (async () => {
      const model = this.#model;
      this.#model = undefined;
      try {
        await model?.release();
      } finally {
        this.#state = 'released';
        this.#resolveReleased();
        this.#onReleased(this);
      }
    })();
    return this.#released;
  }
}
