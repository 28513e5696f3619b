import { type FSWatcher, watch } from 'node:fs';
import { HotocrError, messageOf } from '../errors.js';
import type { Registry } from '../registry/index.js';
import type { TrustReload } from '../server/index.js';
import { type TrustEntry, TrustStore } from '../verify/index.js';

/** Changes to the trust folder closer together than this are read once. */
const SETTLE_MS = 200;

const key = (e: TrustEntry) => `${e.kind}:${e.fingerprint}:${e.notAfter ?? ''}`;

/**
 * The trust store a server verifies with, read again while it serves: when the trust folder
 * changes (watched), on SIGHUP, or when an admin asks. A reading that fails (a file that does
 * not parse, a weak root) keeps the trust in use and says why. Each reading is reported as a
 * `trust` event, with what was added and removed; a change applies to packages that arrive
 * after it. Versions already serving are left to the operator ({@link Registry.retire}).
 */
export class TrustWatch {
  readonly #path: string;
  readonly #registry: Registry;
  #current: TrustStore;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<TrustReload> = Promise.resolve({ ok: true, added: [], removed: [] });
  #closed = false;

  private constructor(path: string, registry: Registry, initial: TrustStore) {
    this.#path = path;
    this.#registry = registry;
    this.#current = initial;
  }

  /** Starts watching `path` (a trust folder, or one file) for changes; `initial` is what it holds now. */
  static start(path: string, registry: Registry, initial: TrustStore): TrustWatch {
    const watcher = new TrustWatch(path, registry, initial);
    try {
      watcher.#watcher = watch(path, { persistent: false }, () => watcher.#changed());
      watcher.#watcher.on('error', () => {
        // A folder removed or replaced: SIGHUP and the admin call still read it again.
      });
    } catch {
      // Not watchable (gone): SIGHUP and the admin call still work once it is back.
    }
    return watcher;
  }

  /** The trust store packages are verified with now. */
  get current(): TrustStore {
    return this.#current;
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.reload('the trust folder changed'), SETTLE_MS);
    this.#timer.unref();
  }

  /** Reads the trust store again; one reading at a time. */
  reload(cause: string): Promise<TrustReload> {
    this.#reading = this.#reading.then(() => this.#read(cause));
    return this.#reading;
  }

  async #read(cause: string): Promise<TrustReload> {
    let next: TrustStore;
    try {
      next = await TrustStore.load(this.#path);
    } catch (error) {
      const e =
        error instanceof HotocrError ? error : new HotocrError('TRUST_STORE_INVALID', messageOf(error));
      const report = {
        ok: false,
        added: [],
        removed: [],
        error: {
          code: e.code,
          message: `${e.message} The trust in use is kept until the folder reads again.`,
        },
      } satisfies TrustReload;
      this.#registry.announce({ type: 'trust', ts: new Date().toISOString(), cause, ...report });
      return report;
    }
    const before = new Map(this.#current.entries().map((e) => [key(e), e]));
    const after = new Map(next.entries().map((e) => [key(e), e]));
    const added = [...after].filter(([k]) => !before.has(k)).map(([, e]) => e);
    const removed = [...before].filter(([k]) => !after.has(k)).map(([, e]) => e);
    this.#current = next;
    this.#registry.announce({ type: 'trust', ts: new Date().toISOString(), cause, added, removed });
    return { ok: true, added, removed };
  }

  /** Stops watching. Safe to call twice. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
  }
}
