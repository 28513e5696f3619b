import type { Registry } from '../registry/index.js';
import { signerCertificate, type TrustEntry } from '../verify/index.js';

/** How long before an expiry the log starts to warn, and how often it warns again. */
export const EXPIRY_WARNING_MS = 14 * 86_400_000;
const AGAIN_MS = 86_400_000;

/** Something that stops being trusted at `at`, as the log names it. */
export interface Expiring {
  readonly what: string;
  readonly at: Date;
}

/** What ends soonest first: signer certificates of versions that serve or are ready, trusted keys and roots. */
export function expiring(registry: Registry, trust: readonly TrustEntry[]): Expiring[] {
  const items: Expiring[] = [];
  for (const v of registry.versions()) {
    const certificate = signerCertificate(v.signer);
    if (certificate && (v.state === 'active' || v.state === 'ready'))
      items.push({
        what: `the signer certificate ${certificate.subject} of ${v.name} ${v.version}`,
        at: new Date(certificate.notAfter),
      });
  }
  for (const e of trust)
    if (e.notAfter && e.kind !== 'deny')
      items.push({
        what: `the trusted ${e.kind} ${e.subject ?? e.fingerprint.slice(0, 16)} (${e.source})`,
        at: new Date(e.notAfter),
      });
  return items.sort((a, b) => a.at.getTime() - b.at.getTime());
}

/**
 * Warns in the log, from 14 days before a signer certificate or a trusted key or root
 * expires, and again each day until it does (and once it has). `look()` runs at start and
 * then every hour; the clock is the caller's, so tests can move it.
 */
export class ExpiryWatch {
  readonly #items: () => Expiring[];
  readonly #warn: (item: Expiring, daysLeft: number) => void;
  readonly #now: () => number;
  /** When each item was last warned about. */
  readonly #warned = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    items: () => Expiring[];
    warn: (item: Expiring, daysLeft: number) => void;
    now?: () => number;
  }) {
    this.#items = options.items;
    this.#warn = options.warn;
    this.#now = options.now ?? Date.now;
  }

  /** Looks now and every `everyMs` (default an hour) until stopped; the timer keeps no process alive. */
  start(everyMs = 3_600_000): void {
    this.look();
    this.#timer ??= setInterval(() => this.look(), everyMs);
    this.#timer.unref();
  }

  /** Warns about each item within the warning window not warned about in the last day. */
  look(): void {
    const now = this.#now();
    for (const item of this.#items()) {
      const left = item.at.getTime() - now;
      if (left > EXPIRY_WARNING_MS) continue;
      const key = `${item.what}@${item.at.toISOString()}`;
      const last = this.#warned.get(key);
      if (last !== undefined && now - last < AGAIN_MS) continue;
      this.#warned.set(key, now);
      this.#warn(item, Math.floor(left / 86_400_000));
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
