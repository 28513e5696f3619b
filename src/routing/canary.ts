import type { ModelRouter } from './routing.js';
import type { TrafficStats } from './stats.js';

export interface CanaryGuardOptions {
  /**
   * Roll back a canary whose error rate (answers of 500 and above) exceeds the stable
   * version's by more than this fraction (0.05: five points). Unset: error rates are not compared.
   */
  readonly errorMargin?: number;
  /**
   * Roll back a canary whose p99 exceeds the stable version's by more than this fraction
   * (0.5: p99 above 1.5 times the stable one) and by more than {@link P99_FLOOR_MS}.
   * Unset: latencies are not compared.
   */
  readonly p99Margin?: number;
  /** Requests each of the two must have answered since the split began before they are compared. */
  readonly minRequests: number;
  /** How far back the comparison looks, at most (seconds). */
  readonly windowSeconds: number;
  /** The clock, ms since the epoch (default `Date.now`): what "since the split began" is read on. */
  readonly now?: () => number;
}

/** What one version did since the split began, as the comparison saw it. */
export interface CanaryFigures {
  readonly version: string;
  readonly requests: number;
  readonly errorRate: number;
  readonly p99: number | null;
}

export interface CanaryRollback {
  readonly name: string;
  readonly cause: 'error-rate' | 'p99';
  readonly canary: CanaryFigures;
  readonly stable: CanaryFigures;
  readonly margin: number;
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * A p99 must also be this much above the stable one to count: below it, differences are a
 * pause or two in a few dozen requests, not a slower model (an OCR read takes hundreds of ms).
 */
export const P99_FLOOR_MS = 50;

/**
 * Automatic rollback of a canary (SPEC section 6): while a split sends part of the traffic to
 * a version other than the active one, each check compares that version's answers since the
 * split began with the active version's. Once both have answered `minRequests`, a canary whose
 * error rate or p99 exceeds the stable version's by more than its margin ends the split: every
 * request goes back to the active version, the routing event says why, and the canary stays
 * loaded for a person to look at.
 */
/** What the guard needs of a model's router: its routing, and ending its split. */
export type GuardedRouter = Pick<ModelRouter, 'view' | 'endSplit'>;

export class CanaryGuard {
  readonly #routers: () => readonly GuardedRouter[];
  readonly #stats: TrafficStats;
  readonly #options: CanaryGuardOptions;
  readonly #onRollback: (rollback: CanaryRollback) => void;
  #timer: NodeJS.Timeout | undefined;

  /** Guards the split of every router `routers` gives (each model's), at each check. */
  constructor(
    routers: () => readonly GuardedRouter[],
    stats: TrafficStats,
    options: CanaryGuardOptions,
    onRollback: (rollback: CanaryRollback) => void = () => {},
  ) {
    this.#routers = routers;
    this.#stats = stats;
    this.#options = options;
    this.#onRollback = onRollback;
  }

  /** Checks every `everyMs` until stopped (the timer does not keep the process alive). */
  start(everyMs = 1000): void {
    this.#timer ??= setInterval(() => this.check(), everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One comparison for each model; returns the rollbacks it made. */
  check(): CanaryRollback[] {
    const made: CanaryRollback[] = [];
    for (const router of this.#routers()) {
      const rollback = this.#checkOne(router);
      if (rollback) made.push(rollback);
    }
    return made;
  }

  #checkOne(router: GuardedRouter): CanaryRollback | undefined {
    const { errorMargin, p99Margin, minRequests, windowSeconds } = this.#options;
    const view = router.view();
    if (view.split.length === 0 || view.name === null || view.active === null) return undefined;
    const now = this.#options.now ?? Date.now;
    const since = Math.max(Date.parse(view.updatedAt), now() - windowSeconds * 1000);
    const figures = (version: string): CanaryFigures => {
      const s = this.#stats.summary(`${view.name}/${version}`, since);
      return { version, requests: s.count, errorRate: s.count ? s.errors / s.count : 0, p99: s.p99 };
    };
    const stable = figures(view.active);
    if (stable.requests < minRequests) return undefined;
    for (const { version, weight } of view.split) {
      if (version === view.active || weight === 0) continue;
      const canary = figures(version);
      if (canary.requests < minRequests) continue;
      let rollback: CanaryRollback | undefined;
      if (errorMargin !== undefined && canary.errorRate > stable.errorRate + errorMargin)
        rollback = { name: view.name, cause: 'error-rate', canary, stable, margin: errorMargin };
      else if (
        p99Margin !== undefined &&
        canary.p99 !== null &&
        stable.p99 !== null &&
        canary.p99 > stable.p99 * (1 + p99Margin) &&
        canary.p99 - stable.p99 > P99_FLOOR_MS
      )
        rollback = { name: view.name, cause: 'p99', canary, stable, margin: p99Margin };
      if (!rollback) continue;
      const what =
        rollback.cause === 'error-rate'
          ? `error rate ${percent(canary.errorRate)} against ${percent(stable.errorRate)} (margin ${percent(rollback.margin)})`
          : `p99 ${canary.p99} ms against ${stable.p99} ms (margin ${percent(rollback.margin)})`;
      router.endSplit(
        `canary ${view.name} ${version} rolled back: ${what} for ${view.active} over ${canary.requests} and ${stable.requests} requests; every request goes to the active version`,
        rollback,
      );
      this.#onRollback(rollback);
      return rollback;
    }
    return undefined;
  }
}
