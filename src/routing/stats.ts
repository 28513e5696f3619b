/**
 * Recent OCR traffic per version, for the dashboard: one-second slots over the last
 * `windowSeconds`, each holding a request count, an error count and a latency histogram
 * (log-spaced bins, 10 ms to 60 s, about 12 % apart), so memory stays fixed whatever the load.
 */

const BINS = 80;
const MIN_MS = 10;
const GROWTH = (60_000 / MIN_MS) ** (1 / (BINS - 1));

interface Slot {
  second: number;
  count: number;
  errors: number;
  bins: Uint32Array;
}

export interface SeriesPoint {
  /** Start of the period, Unix milliseconds. */
  readonly t: number;
  readonly count: number;
  readonly errors: number;
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface VersionStats {
  /** `name/version`. */
  readonly version: string;
  /** Requests per second over the last 10 s. */
  readonly perSecond: number;
  /** p99 latency (ms) over the last 60 s, null without requests. */
  readonly p99: number | null;
  readonly series: readonly SeriesPoint[];
}

const binOf = (ms: number) =>
  Math.min(BINS - 1, Math.max(0, Math.floor(Math.log(Math.max(ms, MIN_MS) / MIN_MS) / Math.log(GROWTH))));
/** The upper edge of a bin: percentiles are reported at most 12 % high, never low. */
const edgeOf = (bin: number) => MIN_MS * GROWTH ** (bin + 1);

function percentile(bins: Uint32Array, total: number, p: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(total * p);
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += bins[i]!;
    if (seen >= rank) return Math.round(edgeOf(i));
  }
  return Math.round(edgeOf(BINS - 1));
}

export class TrafficStats {
  readonly #windowSeconds: number;
  readonly #slots = new Map<string, Slot[]>();
  readonly #now: () => number;

  constructor(windowSeconds = 300, now: () => number = Date.now) {
    this.#windowSeconds = windowSeconds;
    this.#now = now;
  }

  /** Records one answered request: its version (`name/version`), whether it failed, how long it took. */
  record(version: string, ms: number, failed: boolean): void {
    const second = Math.floor(this.#now() / 1000);
    let slots = this.#slots.get(version);
    if (!slots) {
      slots = [];
      this.#slots.set(version, slots);
    }
    let slot = slots.at(-1);
    if (slot?.second !== second) {
      slot = { second, count: 0, errors: 0, bins: new Uint32Array(BINS) };
      slots.push(slot);
      while (slots.length > 0 && slots[0]!.second <= second - this.#windowSeconds) slots.shift();
    }
    slot.count++;
    if (failed) slot.errors++;
    slot.bins[binOf(ms)]!++;
  }

  /**
   * One version's requests answered from `sinceMs` on (at most the whole window): how many,
   * how many failed, and their p99 (ms, null without requests).
   */
  summary(version: string, sinceMs: number): { count: number; errors: number; p99: number | null } {
    const from = Math.max(
      Math.floor(sinceMs / 1000),
      Math.floor(this.#now() / 1000) - this.#windowSeconds + 1,
    );
    const bins = new Uint32Array(BINS);
    let count = 0;
    let errors = 0;
    for (const s of this.#slots.get(version) ?? []) {
      if (s.second < from) continue;
      count += s.count;
      errors += s.errors;
      for (let i = 0; i < BINS; i++) bins[i]! += s.bins[i]!;
    }
    return { count, errors, p99: percentile(bins, count, 0.99) };
  }

  /** Every version seen in the window, with its series in `stepSeconds` periods. */
  snapshot(stepSeconds = 5): VersionStats[] {
    const nowSecond = Math.floor(this.#now() / 1000);
    const out: VersionStats[] = [];
    for (const [version, slots] of this.#slots) {
      const recent = slots.filter((s) => s.second > nowSecond - this.#windowSeconds);
      if (recent.length === 0) {
        this.#slots.delete(version);
        continue;
      }
      /** The slots of seconds [from, to) added together. */
      const merge = (from: number, to: number) => {
        const bins = new Uint32Array(BINS);
        let count = 0;
        let errors = 0;
        for (const s of recent) {
          if (s.second < from || s.second >= to) continue;
          count += s.count;
          errors += s.errors;
          for (let i = 0; i < BINS; i++) bins[i]! += s.bins[i]!;
        }
        return { bins, count, errors };
      };
      const lastTen = merge(nowSecond - 9, nowSecond + 1);
      const lastMinute = merge(nowSecond - 59, nowSecond + 1);
      const series: SeriesPoint[] = [];
      const first = Math.floor((nowSecond - this.#windowSeconds + 1) / stepSeconds) * stepSeconds;
      for (let start = first; start <= nowSecond; start += stepSeconds) {
        const { bins, count, errors } = merge(start, start + stepSeconds);
        if (count > 0)
          series.push({
            t: start * 1000,
            count,
            errors,
            p50: percentile(bins, count, 0.5),
            p99: percentile(bins, count, 0.99),
          });
      }
      out.push({
        version,
        perSecond: Math.round((lastTen.count / 10) * 100) / 100,
        p99: percentile(lastMinute.bins, lastMinute.count, 0.99),
        series,
      });
    }
    return out;
  }
}
