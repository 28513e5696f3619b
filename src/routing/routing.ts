import { createHash } from 'node:crypto';
import { HotocrError } from '../errors.js';
import type { Lease, Registry, RegistryEvent } from '../registry/index.js';
import type { CanaryRollback } from './canary.js';

export interface Split {
  readonly version: string;
  /** Percent of traffic, a whole number; a split's weights add up to 100. */
  readonly weight: number;
}

/** What GET /v1/routing answers and the event stream reports. */
export interface RoutingView {
  /** The model the split applies to (null until one is active). */
  readonly name: string | null;
  readonly active: string | null;
  /** Empty: every request goes to the active version. */
  readonly split: readonly Split[];
  readonly allowPinning: boolean;
  readonly updatedAt: string;
}

export type RoutingEvent = {
  type: 'routing';
  ts: string;
  name: string | null;
  split: readonly Split[];
  allowPinning: boolean;
  reason: string;
  /** Set when the canary guard ended the split: which version, why, and the figures compared. */
  rollback?: CanaryRollback;
};

/** The body of PUT /v1/routing, its shape checked against routingUpdateSchema first. */
export interface RoutingUpdate {
  readonly name?: string;
  /** Version to percent, in the order the ranges are laid out; `{}` sends everything to the active one. */
  readonly split: Readonly<Record<string, number>>;
  readonly allowPinning?: boolean;
}

/**
 * Where the requests of one model go (SPEC section 6). Weights lay the versions out on
 * [0, 100) in the order given; a request with X-User-Id lands at a point fixed by a hash of it,
 * so a user stays on one version while the split is unchanged (and raising the last version's
 * share only moves users onto it); a request without one lands at a random point. A version
 * that stops serving ends the experiment: everything goes back to the active version, and
 * that is reported.
 */
export class ModelRouter {
  readonly name: string;
  readonly #registry: Registry;
  #split: Split[];
  #allowPinning: boolean;
  #updatedAt = new Date().toISOString();
  readonly #emit: (event: RoutingEvent) => void;

  constructor(
    registry: Registry,
    name: string,
    state: { split: readonly Split[]; allowPinning: boolean },
    emit: (event: RoutingEvent) => void,
  ) {
    this.#registry = registry;
    this.name = name;
    this.#split = state.split.map((s) => ({ ...s }));
    this.#allowPinning = state.allowPinning;
    this.#emit = emit;
  }

  view(): RoutingView {
    return {
      name: this.name,
      active: this.#registry.active(this.name)?.version ?? null,
      split: this.#split.map((s) => ({ ...s })),
      allowPinning: this.#allowPinning,
      updatedAt: this.#updatedAt,
    };
  }

  /**
   * Applies a routing change (shape already checked), or throws ROUTING_INVALID when the
   * weights do not add up to 100 or name a version that cannot take traffic. Persisted
   * before it applies: a split that cannot be kept across a restart is not made.
   */
  async update(body: Omit<RoutingUpdate, 'name'>): Promise<RoutingView> {
    const { split, allowPinning } = body;
    const name = this.name;
    if (!this.#registry.active(name))
      throw new HotocrError(
        'ROUTING_INVALID',
        `No version of ${JSON.stringify(name)} is active, so its traffic cannot be routed; GET /v1/models lists the models served.`,
      );
    const entries = Object.entries(split).filter(([, weight]) => weight > 0);
    if (entries.length > 0) {
      const total = entries.reduce((sum, [, w]) => sum + w, 0);
      if (total !== 100)
        throw new HotocrError('ROUTING_INVALID', `The weights add up to ${total}; they must add up to 100.`);
      const serving = new Map(
        this.#registry
          .versions()
          .filter((v) => v.name === name)
          .map((v) => [v.version, v.state]),
      );
      for (const [version] of entries) {
        const state = serving.get(version);
        if (state !== 'ready' && state !== 'active')
          throw new HotocrError(
            'ROUTING_INVALID',
            state === undefined
              ? `${name} ${version} is not a known version; load it first (GET /v1/models lists them).`
              : `${name} ${version} is ${state}; only ready or active versions can take traffic.`,
          );
      }
    }
    const next = entries.map(([version, weight]) => ({ version, weight }));
    await this.#registry.saveRouting(name, next, allowPinning);
    this.#split = next;
    if (allowPinning !== undefined) this.#allowPinning = allowPinning;
    this.#changed('updated');
    return this.view();
  }

  /**
   * A lease on the version this request goes to: the pinned one (when pinning is allowed),
   * else the split's choice, else the active version. Undefined when nothing is active.
   */
  lease(headers: { userId?: string | undefined; pin?: string | undefined }): Lease | undefined {
    if (headers.pin !== undefined && headers.pin !== '') return this.#pinned(headers.pin);
    if (this.#split.length > 0) {
      const point = headers.userId ? userPoint(headers.userId) : Math.random() * 100;
      const lease = this.#registry.lease(this.name, pick(this.#split, point));
      if (lease) return lease;
    }
    return this.#registry.lease(this.name);
  }

  /** The version the split sends a user to (no lease taken): for tests and the dashboard. */
  decide(userId: string | undefined): string | undefined {
    if (this.#split.length === 0) return this.#registry.active(this.name)?.version;
    return pick(this.#split, userId ? userPoint(userId) : Math.random() * 100);
  }

  #pinned(pin: string): Lease {
    if (!this.#allowPinning)
      throw new HotocrError(
        'PINNING_DISABLED',
        'X-Model-Version pins are not allowed on this server; remove the header, or enable pinning (--allow-pinning, or PUT /v1/routing {"allowPinning": true}).',
      );
    const slash = pin.indexOf('/');
    if (slash >= 0 && pin.slice(0, slash) !== this.name)
      throw new HotocrError(
        'REQUEST_INVALID',
        `X-Model-Version ${pin} pins a version of another model than ${this.name}; pin a version of ${this.name}.`,
      );
    const version = slash >= 0 ? pin.slice(slash + 1) : pin;
    const v = this.#registry.versions().find((x) => x.name === this.name && x.version === version);
    if (!v) throw new HotocrError('VERSION_NOT_FOUND', `X-Model-Version ${pin}: no such version is loaded.`);
    const lease = this.#registry.lease(v.name, v.version);
    if (!lease)
      throw new HotocrError(
        'VERSION_NOT_READY',
        `X-Model-Version ${pin}: that version is ${v.state} and cannot serve.`,
      );
    return lease;
  }

  /** Ends the split: every request goes to the active version; the routing event carries `reason`. */
  endSplit(reason: string, rollback?: CanaryRollback): void {
    if (this.#split.length === 0) return;
    this.#split = [];
    // Persisted; a write that fails leaves a split a restart drops if its versions are gone.
    void this.#registry.saveRouting(this.name, []).catch(() => {});
    this.#changed(reason, rollback);
  }

  /** A version of the split that stops serving ends the split. */
  onRegistryEvent(event: RegistryEvent): void {
    if (event.type !== 'draining' && event.type !== 'released' && event.type !== 'failed') return;
    // Versions released because the server stops: the split is kept for the next start.
    if (this.#registry.stopping) return;
    if (event.name !== this.name || !this.#split.some((s) => s.version === event.version)) return;
    this.endSplit(
      `${event.name} ${event.version} is ${event.type}; every request goes to the active version`,
    );
  }

  /** Reports a change as a routing event. */
  announce(reason: string, rollback?: CanaryRollback): void {
    this.#changed(reason, rollback);
  }

  #changed(reason: string, rollback?: CanaryRollback): void {
    this.#updatedAt = new Date().toISOString();
    const view = this.view();
    this.#emit({
      type: 'routing',
      ts: this.#updatedAt,
      name: this.name,
      split: view.split,
      allowPinning: view.allowPinning,
      reason,
      ...(rollback ? { rollback } : {}),
    });
  }
}

/**
 * Where each request goes, for every model: the router of each model (split, pinning switch),
 * resumed from what the registry restored, and which model a request without a name goes to
 * (the default model).
 */
export class Router {
  readonly #registry: Registry;
  readonly #routers = new Map<string, ModelRouter>();
  readonly #allowPinning: boolean;
  readonly #defaultModel: string | undefined;
  readonly #listeners = new Set<(event: RoutingEvent) => void>();

  /**
   * Routers over `registry`, resuming what the registry restored of the persisted splits and
   * pinning switches (a switch as PUT /v1/routing last set it wins over `allowPinning`).
   */
  constructor(registry: Registry, options: { allowPinning: boolean; defaultModel?: string | undefined }) {
    this.#registry = registry;
    this.#allowPinning = options.allowPinning;
    this.#defaultModel = options.defaultModel;
    const restored = registry.restoredRouting();
    for (const [name, state] of Object.entries(restored.splits))
      this.#routers.set(
        name,
        new ModelRouter(
          registry,
          name,
          { split: state.split, allowPinning: state.allowPinning ?? this.#allowPinning },
          (e) => this.#tell(e),
        ),
      );
    registry.on((event) => {
      if ('name' in event && typeof event.name === 'string')
        this.#routers.get(event.name)?.onRegistryEvent(event);
    });
  }

  on(listener: (event: RoutingEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #tell(event: RoutingEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  /** Announces, as routing events, the splits a restart dropped (call once listeners are attached). */
  announceRestart(): void {
    for (const { name, reason } of this.#registry.restoredRouting().dropped)
      this.model(name).announce(
        `the traffic split of ${name} was dropped at restart: ${reason}; every request goes to the active version`,
      );
  }

  /** The router of `name` (made on first use). */
  model(name: string): ModelRouter {
    let router = this.#routers.get(name);
    if (!router) {
      router = new ModelRouter(this.#registry, name, { split: [], allowPinning: this.#allowPinning }, (e) =>
        this.#tell(e),
      );
      this.#routers.set(name, router);
    }
    return router;
  }

  /** The routers of every model that has one. */
  models(): ModelRouter[] {
    return [...this.#routers.values()];
  }

  /** Names of the models with an active version, sorted. */
  #served(): string[] {
    return [
      ...new Set(
        this.#registry
          .versions()
          .filter((v) => v.state === 'active')
          .map((v) => v.name),
      ),
    ].sort();
  }

  /**
   * The model a request without a name goes to: --default-model, else the only model with an
   * active version. Undefined when none is active, or several are and none is the default.
   */
  defaultName(): string | undefined {
    if (this.#defaultModel !== undefined) return this.#defaultModel;
    const served = this.#served();
    return served.length === 1 ? served[0] : undefined;
  }

  /**
   * The router for a request naming `name`, or (none named) the default model's. Throws
   * MODEL_NOT_FOUND for a name never seen, MODEL_REQUIRED when several models serve and none
   * is the default, NOT_READY when none serves.
   */
  resolve(name?: string): ModelRouter {
    if (name !== undefined) {
      if (!this.#registry.knows(name))
        throw new HotocrError(
          'MODEL_NOT_FOUND',
          `No model is named ${JSON.stringify(name)}; GET /v1/models lists the models this server knows.`,
        );
      return this.model(name);
    }
    const chosen = this.defaultName();
    if (chosen !== undefined) return this.model(chosen);
    const served = this.#served();
    if (served.length === 0)
      throw new HotocrError('NOT_READY', 'No model version is active yet; retry shortly.');
    throw new HotocrError(
      'MODEL_REQUIRED',
      `This server serves ${served.length} models (${served.join(', ')}) and none is the default: send the request to POST /v1/models/{name}/ocr, or start with --default-model NAME.`,
    );
  }

  /** The routing of `name`, or of the default model (a view with name null when there is none). */
  view(name?: string): RoutingView {
    const chosen = name ?? this.defaultName();
    if (chosen === undefined)
      return {
        name: null,
        active: null,
        split: [],
        allowPinning: this.#allowPinning,
        updatedAt: new Date(0).toISOString(),
      };
    return this.model(chosen).view();
  }

  /** The routing of every model this server knows, sorted by name. */
  views(): RoutingView[] {
    const names = new Set([...this.#routers.keys(), ...this.#registry.versions().map((v) => v.name)]);
    return [...names].sort().map((n) => this.model(n).view());
  }

  /** Applies a PUT /v1/routing body: to the model it names, else to the default model. */
  update(body: RoutingUpdate): Promise<RoutingView> {
    if (body.name !== undefined && !this.#registry.active(body.name))
      throw new HotocrError(
        'ROUTING_INVALID',
        `No version of ${JSON.stringify(body.name)} is active, so its traffic cannot be routed; GET /v1/models lists the models served.`,
      );
    const { name, ...change } = body;
    return this.resolve(name).update(change);
  }

  /**
   * A lease for a request: on the model it names, or (none named) the model its pin names
   * (`name/version`), else the default model. Undefined when that model has nothing active.
   */
  lease(headers: {
    userId?: string | undefined;
    pin?: string | undefined;
    model?: string | undefined;
  }): Lease | undefined {
    const pinned = headers.pin?.includes('/') ? headers.pin.slice(0, headers.pin.indexOf('/')) : undefined;
    return this.resolve(headers.model ?? pinned).lease(headers);
  }

  /** Where a user goes in the default model (no lease taken): for tests and the dashboard. */
  decide(userId: string | undefined, name?: string): string | undefined {
    const chosen = name ?? this.defaultName();
    return chosen === undefined ? undefined : this.model(chosen).decide(userId);
  }

  /** Ends the split of `name` (the default model's when omitted). */
  endSplit(reason: string, rollback?: CanaryRollback, name?: string): void {
    const chosen = name ?? this.defaultName();
    if (chosen !== undefined) this.#routers.get(chosen)?.endSplit(reason, rollback);
  }
}

/** A user's fixed point on [0, 100): the first 32 bits of SHA-256 of the id. */
export function userPoint(userId: string): number {
  return (createHash('sha256').update(userId).digest().readUInt32BE(0) / 2 ** 32) * 100;
}

function pick(split: readonly Split[], point: number): string {
  let edge = 0;
  for (const s of split) {
    edge += s.weight;
    if (point < edge) return s.version;
  }
  return split[split.length - 1]!.version;
}
