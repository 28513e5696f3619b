import { HotocrError } from '../errors.js';

export interface AdmissionOptions {
  /** Inferences that may run at once. */
  readonly maxInflight: number;
  /** Requests that may wait (or still be uploading their image) behind them. */
  readonly maxQueue: number;
}

interface Waiter {
  grant(): void;
}

/** Seconds a refused client is told to wait before retrying. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Bounds the work the server takes on. A request is admitted before its body is read, so at
 * most `maxInflight + maxQueue` images are ever held in memory however hard clients push;
 * one past that is refused at once with OVERLOADED (503, Retry-After). An admitted request
 * then waits for one of `maxInflight` inference slots, in arrival order.
 */
export class Admission {
  readonly #options: AdmissionOptions;
  #admitted = 0;
  #running = 0;
  readonly #waiting: Waiter[] = [];

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** Requests admitted and not finished: running, waiting, or still sending their body. */
  get admitted(): number {
    return this.#admitted;
  }

  /** Requests waiting for an inference slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  get running(): number {
    return this.#running;
  }

  get capacity(): number {
    return this.#options.maxInflight + this.#options.maxQueue;
  }

  /** Admits a request or throws OVERLOADED; the returned function ends it (harmless twice). */
  admit(): () => void {
    if (this.#admitted >= this.capacity)
      throw new HotocrError(
        'OVERLOADED',
        `The server is at capacity (${this.#options.maxInflight} running, ${this.#options.maxQueue} waiting); retry in ${RETRY_AFTER_SECONDS} s.`,
      );
    this.#admitted++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#admitted--;
    };
  }

  /**
   * Waits for an inference slot, runs `work`, frees the slot. Gives up with TIMEOUT at
   * `deadline` (a performance.now() time) or REQUEST_ABORTED when `signal` aborts while
   * still waiting; once `work` runs it owns its slot until it settles.
   */
  async run<T>(work: () => Promise<T>, deadline: number, signal?: AbortSignal): Promise<T> {
    await this.#slot(deadline, signal);
    try {
      return await work();
    } finally {
      this.#running--;
      this.#waiting.shift()?.grant();
    }
  }

  #slot(deadline: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(aborted());
    if (this.#running < this.#options.maxInflight && this.#waiting.length === 0) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          this.#running++;
          resolve();
        },
      };
      const onAbort = () => {
        leave();
        reject(aborted());
      };
      const timer = setTimeout(
        () => {
          leave();
          reject(
            new HotocrError(
              'TIMEOUT',
              'The request waited longer than the request timeout for an inference slot; retry later.',
            ),
          );
        },
        Math.max(0, deadline - performance.now()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }
}

function aborted(): HotocrError {
  return new HotocrError('REQUEST_ABORTED', 'The client went away before its turn.');
}
