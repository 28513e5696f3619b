import { watch } from 'node:fs';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { errnoOf, HotocrError } from '../errors.js';

/** A timer an adapter started; cancelling it twice, or after it ran, does nothing. */
export interface Timer {
  cancel(): void;
}

/** Time as the folder source sees it: the system's, or one a test moves by hand. */
export interface Clock {
  now(): number;
  /** Runs `fn` once after `ms`; never holds the process open. */
  after(ms: number, fn: () => void): Timer;
  /** Runs `fn` every `ms`; never holds the process open. */
  every(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

/** What happened to a name in the folder: it appeared or went (`rename`), or was written to (`change`). */
export type FolderEvent = 'rename' | 'change';

/** Watches one folder; throws when it cannot (the folder is gone). */
export interface FolderWatcher {
  watch(
    dir: string,
    onEvent: (event: FolderEvent, name: string) => void,
    onError: (error: Error) => void,
  ): { close(): void };
}

/** Node's fs.watch (inotify on Linux), not holding the process open. */
export const nodeWatcher: FolderWatcher = {
  watch(dir, onEvent, onError) {
    const w = watch(dir, { persistent: false }, (event, name) => {
      if (name) onEvent(event === 'change' ? 'change' : 'rename', name);
    });
    w.on('error', onError);
    return w;
  },
};

export interface FolderSourceOptions {
  readonly dir: string;
  /**
   * How long a written file's size and mtime must stay the same before it counts as
   * complete (default 1000 ms). A file renamed into the folder counts at once.
   */
  readonly settleMs?: number;
  /** Where refused packages are moved, with a `.reason.json` beside them (default: left in place). */
  readonly quarantine?: string;
  /** Hands a complete package over; resolves when it was accepted, rejects with the refusal. */
  readonly submit: (path: string) => Promise<unknown>;
  /** Called for what cannot be reported through `submit` (the folder vanished, a stat failed...). */
  readonly onError?: (error: Error) => void;
  /** How often the whole folder is looked at again, in case an event was missed (default 5000 ms). */
  readonly rescanMs?: number;
  /** What tells of changes in the folder (default: fs.watch). */
  readonly watcher?: FolderWatcher;
  /** What times settling, grace periods and rescans (default: the system's). */
  readonly clock?: Clock;
}

interface Seen {
  size: number;
  mtimeMs: number;
  /** When this size and mtime were first observed. */
  since: number;
}

const isPackage = (name: string) => name.endsWith('.zip') && !name.startsWith('.');
/** How soon a file that appeared by rename is looked at (events for a file being written come within this). */
const RENAME_GRACE_MS = 20;

/**
 * The watched folder. A `.zip` counts once it is complete: renamed in, or its size and mtime
 * unchanged for `settleMs`. A file still being written, or changed after it was looked at,
 * is looked at again when it settles; the same file (path, size, mtime) is handed over once,
 * whether it was accepted or refused. Deleting a file unloads nothing.
 */
export class FolderSource {
  readonly #options: FolderSourceOptions;
  readonly #settleMs: number;
  readonly #seen = new Map<string, Seen>();
  /** path → "size:mtime" of what was handed over last. */
  readonly #handled = new Map<string, string>();
  readonly #timers = new Map<string, Timer>();
  readonly #clock: Clock;
  readonly #watcher: FolderWatcher;
  /** Looks under way, started by a timer: what {@link settled} waits for. */
  readonly #running = new Set<Promise<void>>();
  #watching: { close(): void } | undefined;
  #rescan: Timer | undefined;
  #closed = false;

  private constructor(options: FolderSourceOptions) {
    this.#options = options;
    this.#settleMs = options.settleMs ?? 1000;
    this.#clock = options.clock ?? systemClock;
    this.#watcher = options.watcher ?? nodeWatcher;
  }

  /** Starts watching `dir` (created if missing) and looks at what is already there. */
  static async create(options: FolderSourceOptions): Promise<FolderSource> {
    const source = new FolderSource(options);
    await mkdir(options.dir, { recursive: true });
    source.#watch();
    source.#rescan = source.#clock.every(options.rescanMs ?? 5000, () => source.#track(source.#scan()));
    await source.#scan();
    return source;
  }

  #watch(): void {
    if (this.#closed) return;
    try {
      this.#watching = this.#watcher.watch(
        this.#options.dir,
        (event, name) => {
          if (!isPackage(name)) return;
          const path = join(this.#options.dir, name);
          if (event === 'change') {
            // Being written: any earlier observation no longer counts.
            this.#seen.set(path, { size: -1, mtimeMs: -1, since: this.#clock.now() });
            this.#schedule(path, this.#settleMs, false);
          } else {
            this.#seen.delete(path);
            this.#schedule(path, RENAME_GRACE_MS, true);
          }
        },
        () => this.#rewatch(),
      );
    } catch {
      this.#rewatch();
    }
  }

  /** The folder was deleted (or could not be watched): watch it again once it is back. */
  #rewatch(): void {
    this.#watching?.close();
    this.#watching = undefined;
    if (this.#closed) return;
    this.#clock.after(200, () =>
      this.#track(
        (async () => {
          try {
            await mkdir(this.#options.dir, { recursive: true });
            this.#watch();
            await this.#scan();
          } catch (error) {
            this.#options.onError?.(error as Error);
            this.#rewatch();
          }
        })(),
      ),
    );
  }

  /** Keeps a look started by a timer until it ends, for {@link settled}. */
  #track(work: Promise<void>): void {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  /**
   * Resolves once every look started by a timer so far (and those they started) has ended:
   * files handed over and answered, refusals quarantined. For tests that move the clock.
   */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  /**
   * Looks at every package in the folder now, as the periodic rescan does; resolves once each
   * has been looked at: handed over (and answered), left to settle, or found already handled.
   */
  scan(): Promise<void> {
    return this.#scan(true);
  }

  async #scan(wait = false): Promise<void> {
    if (this.#closed) return;
    let names: string[];
    try {
      names = await readdir(this.#options.dir);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT' && !this.#watching) return;
      if (errnoOf(error) === 'ENOENT') this.#rewatch();
      else this.#options.onError?.(error as Error);
      return;
    }
    const checks: Promise<void>[] = [];
    for (const name of names.filter(isPackage)) {
      const path = join(this.#options.dir, name);
      if (this.#timers.has(path)) continue;
      if (wait) checks.push(this.#check(path, false));
      else this.#schedule(path, 0, false);
    }
    await Promise.all(checks);
  }

  #schedule(path: string, delay: number, renamed: boolean): void {
    this.#timers.get(path)?.cancel();
    const timer = this.#clock.after(delay, () => {
      this.#timers.delete(path);
      this.#track(this.#check(path, renamed));
    });
    this.#timers.set(path, timer);
  }

  /**
   * `renamed`: the file appeared by rename and no write followed within the grace period,
   * so it is complete. Otherwise it is complete once its size and mtime held for `settleMs`.
   */
  async #check(path: string, renamed: boolean): Promise<void> {
    if (this.#closed) return;
    let info: { size: number; mtimeMs: number; isFile(): boolean };
    try {
      info = await stat(path);
    } catch {
      this.#seen.delete(path);
      return; // deleted: nothing to do, and nothing is unloaded
    }
    if (!info.isFile()) return;
    const key = `${info.size}:${info.mtimeMs}`;
    if (this.#handled.get(path) === key) return;
    const seen = this.#seen.get(path);
    if (!(renamed && !seen)) {
      const now = this.#clock.now();
      if (!seen || seen.size !== info.size || seen.mtimeMs !== info.mtimeMs) {
        this.#seen.set(path, { size: info.size, mtimeMs: info.mtimeMs, since: now });
        this.#schedule(path, this.#settleMs, false);
        return;
      }
      if (now - seen.since < this.#settleMs) {
        this.#schedule(path, this.#settleMs - (now - seen.since), false);
        return;
      }
    }
    this.#handled.set(path, key);
    this.#seen.delete(path);
    try {
      await this.#options.submit(path);
    } catch (error) {
      // A server stopping is no fault of the package: it stays, to be looked at on the next start.
      if (error instanceof HotocrError && error.code === 'REGISTRY_CLOSED') this.#handled.delete(path);
      else if (this.#options.quarantine && error instanceof HotocrError) await this.#quarantine(path, error);
    }
  }

  async #quarantine(path: string, error: HotocrError): Promise<void> {
    const dir = this.#options.quarantine!;
    try {
      await mkdir(dir, { recursive: true });
      const target = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${basename(path)}`);
      await rename(path, target);
      const reason = {
        code: error.code,
        message: error.message,
        path,
        quarantinedAt: new Date().toISOString(),
        ...error.details,
      };
      await writeFile(`${target}.reason.json`, `${JSON.stringify(reason, null, 2)}\n`);
      this.#handled.delete(path);
    } catch (cause) {
      this.#options.onError?.(cause as Error);
    }
  }

  /** Stops watching. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watching?.close();
    this.#rescan?.cancel();
    for (const t of this.#timers.values()) t.cancel();
    this.#timers.clear();
  }
}
