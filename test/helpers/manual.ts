import type { Clock, FolderEvent, FolderWatcher, Timer } from '../../src/sources/index.js';

/** A clock that moves only when the test says: timers run in order as it passes their time. */
export class ManualClock implements Clock {
  #now = 0;
  #next = 0;
  readonly #timers = new Map<number, { at: number; every?: number; fn: () => void }>();

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    return this.#add({ at: this.#now + ms, fn });
  }

  every(ms: number, fn: () => void): Timer {
    return this.#add({ at: this.#now + ms, every: ms, fn });
  }

  #add(timer: { at: number; every?: number; fn: () => void }): Timer {
    const id = this.#next++;
    this.#timers.set(id, timer);
    return { cancel: () => this.#timers.delete(id) };
  }

  /** Moves time on by `ms`, running every timer due on the way (those due at once too). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let due: [number, { at: number; every?: number; fn: () => void }] | undefined;
      for (const entry of this.#timers)
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      const [id, timer] = due;
      this.#now = Math.max(this.#now, timer.at);
      if (timer.every !== undefined) timer.at += timer.every;
      else this.#timers.delete(id);
      timer.fn();
    }
    this.#now = end;
  }
}

/** A folder watcher whose events the test sends, as fs.watch would for what the test did. */
export class ManualWatcher implements FolderWatcher {
  #listener: { onEvent(event: FolderEvent, name: string): void; onError(error: Error): void } | undefined;
  /** How many times the folder was watched (again after an error). */
  watches = 0;

  watch(_dir: string, onEvent: (event: FolderEvent, name: string) => void, onError: (error: Error) => void) {
    const listener = { onEvent, onError };
    this.#listener = listener;
    this.watches++;
    return {
      close: () => {
        if (this.#listener === listener) this.#listener = undefined;
      },
    };
  }

  emit(event: FolderEvent, name: string): void {
    this.#listener?.onEvent(event, name);
  }

  fail(error = new Error('the watched folder went away')): void {
    this.#listener?.onError(error);
  }
}
