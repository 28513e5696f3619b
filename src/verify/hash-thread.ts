/**
 * The main thread's side of the hashing thread (hash-worker.ts): package bytes are read,
 * hashed and kept there, and the kept bytes are moved here, not copied. The main thread
 * dispatches every request, so the 16 MB and tens of milliseconds a package costs must not
 * land on it, nor on its collector.
 */
import type { Worker } from 'node:worker_threads';
import { deserializeError } from '../thread-errors.js';
import { startThread } from '../threads.js';
import type { HashRange, HashReply, HashRequest } from './hash-worker.js';

/** A request without its id (distributes over the union). */
type Job =
  Exclude<HashRequest, { type: 'cancel' }> extends infer R
    ? R extends unknown
      ? Omit<R, 'id'>
      : never
    : never;
type Done = Extract<HashReply, { ok: true }>;

/** A job that was on the hashing thread when it died. */
class HashThreadLostError extends Error {}

class HashThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(reply: Done): void; reject(error: Error): void }>();
  #next = 0;
  #stopped = false;

  constructor() {
    this.#worker = startThread(new URL('./hash-worker.js', import.meta.url));
    // Idle, it must not hold the process open; run() holds it while a job is pending.
    this.#worker.unref();
    this.#worker.on('message', (reply: HashReply) => {
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (!reply.ok && reply.stopping) this.#stopped = true;
      if (reply.ok) p?.resolve(reply);
      else p?.reject(deserializeError(reply.error));
    });
    const fail = (error: Error) => {
      this.#stopped = true;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', (e) =>
      fail(new HashThreadLostError(`The hashing thread crashed: ${e.message}`, { cause: e })),
    );
    this.#worker.on('exit', (code) =>
      fail(new HashThreadLostError(`The hashing thread stopped (code ${code}).`)),
    );
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Runs a job; when `signal` fires, the thread is told to stop it, and the job ends (with the
   * signal's reason) once the thread has let go of the job's descriptor, within one read.
   */
  run(job: Job, signal?: AbortSignal): Promise<Done> {
    const id = this.#next++;
    return new Promise<Done>((resolve, reject) => {
      const onAbort = () => this.#worker.postMessage({ type: 'cancel', id } satisfies HashRequest);
      const settle =
        <T>(f: (value: T) => void) =>
        (value: T) => {
          signal?.removeEventListener('abort', onAbort);
          f(value);
        };
      this.#pending.set(id, {
        resolve: settle(resolve),
        reject: settle((error: Error) => reject(signal?.aborted ? signal.reason : error)),
      });
      this.#worker.ref();
      this.#worker.postMessage({ ...job, id });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

let current: HashThread | undefined;

/** The process's hashing thread, started on first use and replaced if it stopped. */
function hashThread(): HashThread {
  if (!current || current.stopped) current = new HashThread();
  return current;
}

/**
 * Runs `job` on the hashing thread. A job the thread died under runs once more, on a new
 * thread: it only reads (at given positions) and hashes, so a second run gives what the
 * first would have. A second death is the caller's error.
 */
async function run(job: Job, signal?: AbortSignal): Promise<Done> {
  signal?.throwIfAborted();
  try {
    return await hashThread().run(job, signal);
  } catch (error) {
    if (!(error instanceof HashThreadLostError)) throw error;
    signal?.throwIfAborted();
    return hashThread().run(job, signal);
  }
}

export interface HashedBytes {
  readonly name: string;
  readonly sha256: string;
  readonly size: number;
  /** The range's bytes, when they were to be kept. */
  readonly bytes?: Buffer;
}

/**
 * Reads `size` bytes of the open file `fd` once, on the hashing thread, and returns their
 * SHA-256 and that of each range (with its bytes, where `keep` is set). `nice`, when higher
 * than the thread's, lowers its priority for this job. A file shorter than `size` is refused
 * with ARCHIVE_INVALID. `fd` must stay open until this settles; `signal` stops the read
 * within one chunk, and this then throws the signal's reason.
 */
export async function hashDescriptor(
  fd: number,
  size: number,
  ranges: readonly HashRange[],
  nice?: number,
  signal?: AbortSignal,
): Promise<{ sha256: string; ranges: HashedBytes[] }> {
  const reply = await run(
    {
      type: 'scan',
      fd,
      size,
      ranges,
      ...(nice !== undefined ? { nice } : {}),
    },
    signal,
  );
  return {
    sha256: reply.sha256,
    ranges: reply.ranges.map((r) => ({
      name: r.name,
      sha256: r.sha256,
      size: r.size,
      ...(r.bytes ? { bytes: Buffer.from(r.bytes) } : {}),
    })),
  };
}

/** SHA-256 of a whole file, hex, read and hashed on the hashing thread (at `nice`, as above). */
export async function hashFile(path: string, nice?: number): Promise<string> {
  const reply = await run({ type: 'file', path, ...(nice !== undefined ? { nice } : {}) });
  return reply.sha256;
}
