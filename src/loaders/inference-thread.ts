/**
 * One inference thread seen from the main thread: requests out, typed replies back, and what
 * becomes of the tasks it held when it dies. Which thread reads what, and what is kept when
 * it dies, is its owner's ({@link InferenceThreads}).
 */
import type { Worker } from 'node:worker_threads';
import { InferenceError } from '../errors.js';
import { deserializeError } from '../thread-errors.js';
import { startThread } from '../threads.js';
import {
  isReplyTo,
  type Kind,
  type OkReply,
  type RequestOf,
  type WorkerReply,
  type WorkerRequest,
} from './inference-protocol.js';

/** A task that was on an inference thread when it died, or sent to one that had. */
export class ThreadLostError extends InferenceError {}

/** The answer to a request of kind K. */
export type Answer<K extends Kind> = Extract<OkReply, { type: K }>;

export class InferenceThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { settle(reply: WorkerReply): void; reject(error: Error): void }>();
  #next = 0;
  #dead: Error | undefined;
  /** Set when this process stops the thread itself: its exit is then no loss. */
  #stopping = false;
  /** Versions (pools) loaded on this thread. */
  users = 0;

  /** `lost` is called once if the thread dies without being stopped, after its tasks have failed. */
  constructor(lost: (thread: InferenceThread, error: Error) => void) {
    this.#worker = startThread(new URL('./ocr-worker.js', import.meta.url));
    this.#worker.on('message', (reply: WorkerReply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      p.settle(reply);
    });
    const fail = (error: Error) => {
      const unexpected = this.#dead === undefined && !this.#stopping;
      this.#dead ??= error;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
      if (unexpected) lost(this, error);
    };
    this.#worker.on('error', (e) =>
      fail(new ThreadLostError(`An inference thread crashed: ${e.message}`, { cause: e })),
    );
    this.#worker.on('exit', (code) =>
      fail(new ThreadLostError(`An inference thread exited (code ${code}).`)),
    );
  }

  /** Tasks sent and not answered yet: how busy this thread is. */
  get load(): number {
    return this.#pending.size;
  }

  /** Sends a request; resolves with the reply to its kind, rejects with the error the thread threw (its class, code, details and cause). */
  send<K extends Kind>(
    request: RequestOf<K> & { type: K },
    transfer: ArrayBuffer[] = [],
  ): Promise<Answer<K>> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, {
        settle: (reply) => {
          if (!reply.ok) reject(deserializeError(reply.error));
          else if (isReplyTo<K>(reply, request.type)) resolve(reply);
          else
            reject(
              new InferenceError(
                `An inference thread answered a ${request.type} request with a ${reply.type} reply.`,
              ),
            );
        },
        reject,
      });
      this.#worker.postMessage(
        { ...request, id } satisfies Omit<WorkerRequest, 'id'> & { id: number },
        transfer,
      );
    });
  }

  get alive(): boolean {
    return this.#dead === undefined;
  }

  /** Why the thread stopped, once it has. */
  get death(): Error | undefined {
    return this.#dead;
  }

  /** Stops the thread, whatever it holds. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#worker.terminate();
  }

  /** Kept idle: the thread no longer holds the process open. */
  sleep(): void {
    this.#worker.unref();
  }

  /** Takes a kept thread back into use; false when it has died meanwhile. */
  wake(): boolean {
    if (this.#dead) return false;
    this.#worker.ref();
    return true;
  }
}
