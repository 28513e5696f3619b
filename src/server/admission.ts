import { HotocrError } from '../errors.js';

export interface AdmissionOptions {
  /** Inferences that may run at once, all models together. */
  readonly maxInflight: number;
  /** Requests of one model that may wait (or still be uploading their image) behind them. */
  readonly maxQueue: number;
}

interface Waiter {
  grant(): void;
}

/** Seconds a refused client is told to wait before retrying. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Bounds the work the server takes on, fairly between models. A request is admitted before
 * its body is read, against its model's own place count: at most `maxInflight + maxQueue`
 * requests of one model are ever held, however hard its clients push, and one past that is
 * refused at once with OVERLOADED (503, Retry-After), while other models are admitted as
 * before. An admitted request then waits for one of `maxInflight` inference slots, which
 * every model shares: each model's requests wait in arrival order, and when a slot frees
 * the models waiting take turns, so a flooded model gets one slot in turn and never all.
 */
export class Admission {
  readonly #options: AdmissionOptions;
  readonly #admitted = new Map<string, number>();
  #running = 0;
  /** Inferences running, per model. */
  readonly #runningBy = new Map<string, number>();
  /** Requests waiting for a slot, per model; Map order is the turn order. */
  readonly #waiting = new Map<string, Waiter[]>();
  /** The model served last: the next slot goes to the one after it. */
  #last: string | undefined;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** Requests admitted and not finished, all models: running, waiting, or still sending their body. */
  get admitted(): number {
    let n = 0;
    for (const count of this.#admitted.values()) n += count;
    return n;
  }

  /** Requests waiting for an inference slot, all models. */
  get queued(): number {
    let n = 0;
    for (const queue of this.#waiting.values()) n += queue.length;
    return n;
  }

  get running(): number {
    return this.#running;
  }

  /** Per model with requests held: how many wait for a slot and how many run. */
  perModel(): { model: string; queued: number; running: number }[] {
    const models = new Set([...this.#admitted.keys(), ...this.#runningBy.keys(), ...this.#waiting.keys()]);
    return [...models].map((model) => ({
      model,
      queued: this.#waiting.get(model)?.length ?? 0,
      running: this.#runningBy.get(model) ?? 0,
    }));
  }

  /** Places of one model: running and waiting. */
  get capacity(): number {
    return this.#options.maxInflight + this.#options.maxQueue;
  }

  /** Admits a request of `model` or throws OVERLOADED; the returned function ends it (harmless twice). */
  admit(model = ''): () => void {
    const count = this.#admitted.get(model) ?? 0;
    if (count >= this.capacity)
      throw new HotocrError(
        'OVERLOADED',
        `The server is at capacity${model ? ` for ${model}` : ''} (${this.#options.maxInflight} running, ${this.#options.maxQueue} waiting); retry in ${RETRY_AFTER_SECONDS} s.`,
      );
    this.#admitted.set(model, count + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#admitted.get(model) ?? 1) - 1;
      if (left > 0) this.#admitted.set(model, left);
      else this.#admitted.delete(model);
    };
  }

  /**
   * Waits for an inference slot (its model's turn), runs `work`, frees the slot. Gives up
   * with TIMEOUT at `deadline` (a performance.now() time) or REQUEST_ABORTED when `signal`
   * aborts while still waiting; once `work` runs it owns its slot until it settles.
   */
  async run<T>(work: () => Promise<T>, deadline: number, signal?: AbortSignal, model = ''): Promise<T> {
    await this.#slot(model, deadline, signal);
    this.#runningBy.set(model, (this.#runningBy.get(model) ?? 0) + 1);
    try {
      return await work();
    } finally {
      this.#running--;
      const left = (this.#runningBy.get(model) ?? 1) - 1;
      if (left > 0) this.#runningBy.set(model, left);
      else this.#runningBy.delete(model);
      this.#next()?.grant();
    }
  }

  /** The first waiter of the model whose turn it is: the next one after the last served that waits. */
  #next(): Waiter | undefined {
    const models = [...this.#waiting.keys()];
    if (models.length === 0) return undefined;
    const after = this.#last === undefined ? -1 : models.indexOf(this.#last);
    // Models after the last served first, then from the start (the last served comes last).
    const order = after < 0 ? models : [...models.slice(after + 1), ...models.slice(0, after + 1)];
    for (const model of order) {
      const waiter = this.#waiting.get(model)?.[0];
      if (waiter) {
        this.#last = model;
        return waiter;
      }
    }
    return undefined;
  }

  #slot(model: string, deadline: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(aborted());
    if (this.#running < this.#options.maxInflight && this.queued === 0) {
      this.#running++;
      this.#last = model;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const queue = this.#waiting.get(model);
        const i = queue?.indexOf(waiter) ?? -1;
        if (queue && i >= 0) queue.splice(i, 1);
        if (queue?.length === 0) this.#waiting.delete(model);
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
      const queue = this.#waiting.get(model) ?? [];
      queue.push(waiter);
      this.#waiting.set(model, queue);
    });
  }
}

function aborted(): HotocrError {
  return new HotocrError('REQUEST_ABORTED', 'The client went away before its turn.');
}
