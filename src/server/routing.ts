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
 * Where each request goes (SPEC section 6). Weights lay the versions out on [0, 100) in the
 * order given; a request with X-User-Id lands at a point fixed by a hash of it, so a user stays
 * on one version while the split is unchanged (and raising the last version's share only moves
 * users onto it); a request without one lands at a random point. A version that stops serving
 * ends the experiment: everything goes back to the active version, and that is reported.
 */
export class Router {
  readonly #registry: Registry;
  #name: string | null = null;
  #split: Split[] = [];
  #allowPinning: boolean;
  #updatedAt = new Date().toISOString();
  readonly #listeners = new Set<(event: RoutingEvent) => void>();

  /**
   * A router over `registry`, resuming what the registry restored of the persisted split and
   * pinning switch (the switch as PUT /v1/routing last set it wins over `allowPinning`).
   */
  constructor(registry: Registry, options: { allowPinning: boolean }) {
    this.#registry = registry;
    const restored = registry.restoredRouting();
    this.#allowPinning = restored.allowPinning ?? options.allowPinning;
    for (const [name, split] of Object.entries(restored.splits)) {
      if (split.length === 0 || this.#split.length > 0) continue;
      this.#name = name;
      this.#split = split.map((s) => ({ ...s }));
    }
    registry.on((event) => this.#onRegistryEvent(event));
  }

  /** Announces, as routing events, the splits a restart dropped (call once listeners are attached). */
  announceRestart(): void {
    for (const { name, reason } of this.#registry.restoredRouting().dropped)
      this.#changed(
        `the traffic split of ${name} was dropped at restart: ${reason}; every request goes to the active version`,
        undefined,
        name,
      );
  }

  on(listener: (event: RoutingEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  view(): RoutingView {
    const name = this.#name ?? this.#registry.active()?.name ?? null;
    return {
      name,
      active: name === null ? null : (this.#registry.active(name)?.version ?? null),
      split: this.#split.map((s) => ({ ...s })),
      allowPinning: this.#allowPinning,
      updatedAt: this.#updatedAt,
    };
  }

  /**
   * Applies a PUT /v1/routing body (shape already checked), or throws ROUTING_INVALID when
   * the weights do not add up to 100 or name a version that cannot take traffic.
   */
  async update(body: RoutingUpdate): Promise<RoutingView> {
    const { split, allowPinning } = body;
    const name = body.name ?? this.#registry.active()?.name;
    if (!name) throw new HotocrError('NOT_READY', 'No model is active yet, so there is nothing to route.');
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
    // Persisted before it applies: a split that cannot be kept across a restart is not made.
    await this.#registry.saveRouting(name, next, allowPinning);
    if (this.#name !== null && this.#name !== name && this.#split.length > 0)
      await this.#registry.saveRouting(this.#name, []);
    this.#name = name;
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
    const name = this.#name ?? this.#registry.active()?.name;
    if (name === undefined || name === null) return undefined;
    if (this.#split.length > 0) {
      const point = headers.userId ? userPoint(headers.userId) : Math.random() * 100;
      const version = pick(this.#split, point);
      const lease = this.#registry.lease(name, version);
      if (lease) return lease;
    }
    return this.#registry.lease(name);
  }

  /** The version the split sends a user to (no lease taken): for tests and the dashboard. */
  decide(userId: string | undefined): string | undefined {
    const name = this.#name ?? this.#registry.active()?.name;
    if (!name) return undefined;
    if (this.#split.length === 0) return this.#registry.active(name)?.version;
    return pick(this.#split, userId ? userPoint(userId) : Math.random() * 100);
  }

  #pinned(pin: string): Lease {
    if (!this.#allowPinning)
      throw new HotocrError(
        'PINNING_DISABLED',
        'X-Model-Version pins are not allowed on this server; remove the header, or enable pinning (--allow-pinning, or PUT /v1/routing {"allowPinning": true}).',
      );
    const slash = pin.indexOf('/');
    const name = slash >= 0 ? pin.slice(0, slash) : (this.#name ?? this.#registry.active()?.name);
    const version = slash >= 0 ? pin.slice(slash + 1) : pin;
    const v = name
      ? this.#registry.versions().find((x) => x.name === name && x.version === version)
      : undefined;
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
    this.#forget();
    this.#changed(reason, rollback);
  }

  /** Persists the end of the split; a write that fails leaves a split a restart drops if its versions are gone. */
  #forget(): void {
    if (this.#name !== null) void this.#registry.saveRouting(this.#name, []).catch(() => {});
  }

  #onRegistryEvent(event: RegistryEvent): void {
    if (event.type !== 'draining' && event.type !== 'released' && event.type !== 'failed') return;
    // Versions released because the server stops: the split is kept for the next start.
    if (this.#registry.stopping) return;
    if (event.name !== this.#name || !this.#split.some((s) => s.version === event.version)) return;
    this.#split = [];
    this.#forget();
    this.#changed(
      `${event.name} ${event.version} is ${event.type}; every request goes to the active version`,
    );
  }

  #changed(reason: string, rollback?: CanaryRollback, name?: string): void {
    this.#updatedAt = new Date().toISOString();
    const view = this.view();
    const event: RoutingEvent = {
      type: 'routing',
      ts: this.#updatedAt,
      name: name ?? view.name,
      split: view.split,
      allowPinning: view.allowPinning,
      reason,
      ...(rollback ? { rollback } : {}),
    };
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure is its own.
      }
    }
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
