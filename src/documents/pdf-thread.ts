/**
 * The main thread's side of the PDF rendering thread (pdf-worker.ts): a PDF open there, seen
 * through asynchronous calls. One thread per process, started with the first PDF; idle, it
 * does not hold the process open.
 *
 * The thread answers its calls one at a time, in order, so the oldest call waiting for an
 * answer is the one PDFium is working on; a call whose deadline has passed when its turn
 * comes is refused there (TIMEOUT) without being started. WebAssembly cannot be interrupted,
 * so a thread is stopped, and another started for the next call, when:
 * - the call it is working on is still running at its request's deadline (a page built to
 *   keep a renderer busy for minutes must not hold up every other document): that call
 *   fails with TIMEOUT;
 * - it dies (PDFium trapped: out of its memory, an abort): the call it was working on fails
 *   with the trap;
 * - its PDFium memory has grown past {@link RETIRE_HEAP_BYTES} (WebAssembly memory never
 *   shrinks, so one heavy page would otherwise keep its peak for the life of the process):
 *   it is retired once its last document is closed, and nothing fails. At most two threads
 *   live at once: while one is being retired, its successor is not retired in turn.
 * The other calls it held had no part in it: their documents are opened again on the new
 * thread and the calls made there, so they go on as if nothing happened (after
 * {@link RETRIES} such stops in a row, RENDERER_UNAVAILABLE, 503).
 */
import type { Worker } from 'node:worker_threads';
import { HotocrError } from '../errors.js';
import { deserializeError, type SerializedError } from '../thread-errors.js';
import { startThread } from '../threads.js';
import { PdfOpenError } from './pdf-errors.js';

type Size = { width: number; height: number };

/** PDFium memory past which a thread is retired once its documents are closed. */
export const RETIRE_HEAP_BYTES = 512 * 1024 * 1024;
/** Times a call is made again on a new thread after the one it waited on was stopped for another's sake. */
const RETRIES = 3;
/**
 * How long past its deadline the running call is let go on before its thread is stopped: a
 * call that starts just before its deadline and is refused at once (its answer on its way)
 * does not cost a thread.
 */
const STOP_GRACE_MS = 50;

/** A call to the thread; `until` (a wall-clock time, ms since the epoch): not started past it. */
export type PdfRequest = { id: number; until?: number } & (
  | { type: 'open'; bytes: Uint8Array; password?: Uint8Array }
  | { type: 'sizes'; handle: number; indexes: number[] }
  | { type: 'render'; handle: number; index: number; width: number; height: number }
  | { type: 'text'; handle: number; index: number }
  | { type: 'close'; handle: number }
);

export type PdfReply =
  | { id: number; ok: true; type: 'open'; handle: number; pageCount: number; encrypted: boolean }
  | { id: number; ok: true; type: 'refused'; reason: number }
  | { id: number; ok: true; type: 'sizes'; sizes: (Size | null)[] }
  | { id: number; ok: true; type: 'render'; data: Uint8Array | null }
  | { id: number; ok: true; type: 'text'; chars: number }
  | { id: number; ok: true; type: 'close'; heapBytes: number }
  /** `fatal`: PDFium trapped, and the thread ends after this answer. */
  | { id: number; ok: false; error: SerializedError; fatal: boolean };

type Answer = Extract<PdfReply, { ok: true }>;
type Request = PdfRequest extends infer R ? (R extends unknown ? Omit<R, 'id' | 'until'> : never) : never;

/** Why rendering threads were stopped, since the process started. */
export interface PdfRendererStats {
  /** Threads started. */
  started: number;
  /** Stopped with a call still running at its deadline. */
  deadline: number;
  /** Died under a call (PDFium trapped, or the thread failed). */
  crashed: number;
  /** Retired, their documents closed, for the PDFium memory they held. */
  retired: number;
}

const stats: PdfRendererStats = { started: 0, deadline: 0, crashed: 0, retired: 0 };

/** How the process's rendering threads have fared (for /metrics). */
export function pdfRendererStats(): Readonly<PdfRendererStats> {
  return { ...stats };
}

function pastDeadline(): HotocrError {
  return new HotocrError(
    'TIMEOUT',
    'PDFium was still at work on the document at the request deadline (--request-timeout-ms); the document is refused. Ask for a lower resolution with ?dpi=, fewer pages, or retry later.',
  );
}

/** A call the thread held when it was stopped for another call's sake: made again on a new thread. */
class RendererStopped extends Error {}

/** PDFium trapped (out of its memory, an abort) on a call: the document's doing, said by the caller. */
export class PdfiumTrap extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
    this.name = 'PdfiumTrap';
  }
}

interface Pending {
  resolve(reply: Answer): void;
  reject(error: Error): void;
  /** A performance.now() time: the call is not let run past it. */
  readonly deadline: number | undefined;
}

class PdfThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  /** Documents open on the thread. */
  #open = 0;
  #watch: NodeJS.Timeout | undefined;
  dead = false;
  /** Takes no new documents; stopped once its last one is closed. */
  retired = false;

  constructor() {
    stats.started++;
    this.#worker = startThread(new URL('./pdf-worker.js', import.meta.url));
    this.#worker.unref();
    this.#worker.on('message', (reply: PdfReply) => this.#answer(reply));
    this.#worker.on('error', (e) => this.#died(e.message));
    this.#worker.on('exit', (code) => this.#died(`exit code ${code}`));
  }

  send(request: Request, { transfer = [], deadline }: { transfer?: ArrayBuffer[]; deadline?: number } = {}) {
    if (this.dead) return Promise.reject(new RendererStopped());
    // Not started at all: it would only be stopped as soon as its turn came, and the thread with it.
    if (deadline !== undefined && performance.now() >= deadline) return Promise.reject(pastDeadline());
    const id = this.#next++;
    this.#worker.ref();
    // The thread has its own clock origin: it is told the deadline as a wall-clock time.
    const until = deadline === undefined ? undefined : performance.timeOrigin + deadline;
    return new Promise<Answer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline });
      this.#worker.postMessage({ ...request, id, ...(until === undefined ? {} : { until }) }, transfer);
      if (this.#pending.size === 1) this.#watchHead();
    });
  }

  /** A document's handle is no longer used (closed, or never to be). */
  released(): void {
    this.#open--;
    this.#retireIfIdle();
  }

  #answer(reply: PdfReply): void {
    const p = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker.unref();
    if (reply.ok) {
      if (reply.type === 'open') this.#open++;
      if (reply.type === 'close' && reply.heapBytes > RETIRE_HEAP_BYTES) this.retired = true;
      p?.resolve(reply);
    } else {
      const error = deserializeError(reply.error);
      p?.reject(reply.fatal ? new PdfiumTrap(error) : error);
      if (reply.fatal) {
        // PDFium trapped and the thread is ending: the calls after this one go elsewhere now.
        stats.crashed++;
        this.#stop(undefined);
        return;
      }
    }
    this.#watchHead();
    this.#retireIfIdle();
  }

  /**
   * Watches the call the thread is working on: the oldest one unanswered. One whose deadline
   * has passed already when its turn comes is refused by the thread without being started.
   */
  #watchHead(): void {
    clearTimeout(this.#watch);
    this.#watch = undefined;
    if (this.dead) return;
    const head = this.#pending.entries().next().value;
    if (!head || head[1].deadline === undefined || head[1].deadline <= performance.now()) return;
    const [id, { deadline }] = head;
    this.#watch = setTimeout(
      () => {
        if (this.dead || this.#pending.keys().next().value !== id) return;
        stats.deadline++;
        this.#stop(pastDeadline());
      },
      deadline - performance.now() + STOP_GRACE_MS,
    );
    this.#watch.unref();
  }

  #retireIfIdle(): void {
    if (!this.retired || this.dead || this.#open > 0 || this.#pending.size > 0) return;
    stats.retired++;
    this.#stop(undefined);
  }

  /** The thread died on its own without saying why (out of memory, a failure of the thread). */
  #died(why: string): void {
    if (this.dead) return;
    stats.crashed++;
    this.#stop(new PdfiumTrap(new Error(`the PDF renderer stopped (${why})`)));
  }

  /**
   * Ends the thread. The call it was working on fails with `culprit` (none when it was
   * answered already, or there was none); every other call is made again elsewhere.
   */
  #stop(culprit: Error | undefined): void {
    this.dead = true;
    clearTimeout(this.#watch);
    const calls = [...this.#pending.values()];
    this.#pending.clear();
    for (const [i, call] of calls.entries())
      call.reject(i === 0 && culprit ? culprit : new RendererStopped());
    void this.#worker.terminate();
  }
}

/** The thread new documents go to, and the one being retired (its documents still open), if any. */
const threads: { current: PdfThread | undefined; retiring: PdfThread | undefined } = {
  current: undefined,
  retiring: undefined,
};

/**
 * The thread new documents are opened on. A retired thread is replaced, unless the one
 * retired before it still lives: then it keeps taking documents, so that no more than two
 * threads, and two PDFium memories, live at once.
 */
function pdfThread(): PdfThread {
  const current = threads.current;
  if (current && !current.dead) {
    if (!current.retired) return current;
    if (threads.retiring && !threads.retiring.dead) return current;
    threads.retiring = current;
  }
  threads.current = new PdfThread();
  return threads.current;
}

/** A reply of another kind than asked: a defect, said as one. */
function unexpected(reply: Answer): never {
  throw new Error(`The PDF renderer answered with a ${reply.type} reply.`);
}

export interface OpenOptions {
  /** A performance.now() time: no call on the document runs past it. */
  readonly deadline?: number | undefined;
  /** The PDF's password, as bytes, when it needs one. */
  readonly password?: Uint8Array | undefined;
}

interface Opened {
  thread: PdfThread;
  handle: number;
  pageCount: number;
  encrypted: boolean;
}

/** Opens a copy of `bytes` on the current thread, again on a new one if that one is stopped under it. */
async function openOnThread(bytes: Uint8Array, { deadline, password }: OpenOptions): Promise<Opened> {
  for (let attempt = 0; ; attempt++) {
    const thread = pdfThread();
    const copy = new Uint8Array(bytes);
    try {
      const reply = await thread.send(
        { type: 'open', bytes: copy, ...(password ? { password } : {}) },
        { transfer: [copy.buffer], deadline },
      );
      if (reply.type === 'refused') throw new PdfOpenError(reply.reason);
      if (reply.type !== 'open') unexpected(reply);
      return { thread, handle: reply.handle, pageCount: reply.pageCount, encrypted: reply.encrypted };
    } catch (error) {
      if (!(error instanceof RendererStopped) || attempt >= RETRIES) throw stoppedToRefusal(error);
    }
  }
}

/** A call still stopped after its retries: not the document's doing, so a 503 to retry. */
function stoppedToRefusal(error: unknown): unknown {
  if (!(error instanceof RendererStopped)) return error;
  return new HotocrError(
    'RENDERER_UNAVAILABLE',
    `The PDF renderer was stopped ${RETRIES + 1} times in a row, for other documents, while this one waited; retry later.`,
  );
}

/** Closes a document's copy on its thread. Nothing waits for it: a thread that was stopped has freed the copy with itself. */
function closeOn({ thread, handle }: Opened): void {
  thread
    .send({ type: 'close', handle })
    .catch(() => {})
    .finally(() => thread.released());
}

/** A PDF open on the rendering thread. Close it; closing twice is harmless. */
export class RemotePdf {
  readonly #bytes: Uint8Array;
  readonly #options: OpenOptions;
  #at: Opened;
  #reopening: Promise<void> | undefined;
  #closed = false;

  private constructor(bytes: Uint8Array, options: OpenOptions, at: Opened) {
    this.#bytes = bytes;
    this.#options = options;
    this.#at = at;
  }

  /**
   * Opens the PDF in `bytes` on the rendering thread, or throws PdfOpenError. `bytes` is kept
   * (not copied) while the PDF is open: the document is opened again from it if its thread
   * is stopped for another document's sake. No call on it runs past `deadline`.
   */
  static async open(bytes: Uint8Array, options: OpenOptions = {}): Promise<RemotePdf> {
    return new RemotePdf(bytes, options, await openOnThread(bytes, options));
  }

  get pageCount(): number {
    return this.#at.pageCount;
  }

  get encrypted(): boolean {
    return this.#at.encrypted;
  }

  /** The sizes of pages `indexes` (from 0) in points, read without loading them; undefined where unreadable. */
  async pageSizes(indexes: number[]): Promise<(Size | undefined)[]> {
    const reply = await this.#call((handle) => ({ type: 'sizes', handle, indexes }));
    if (reply.type !== 'sizes') unexpected(reply);
    return reply.sizes.map((s) => s ?? undefined);
  }

  /** Page `index` (from 0) rendered at `width` x `height` onto white, as RGB; undefined when PDFium cannot load it. */
  async render(index: number, width: number, height: number): Promise<Uint8Array | undefined> {
    const reply = await this.#call((handle) => ({ type: 'render', handle, index, width, height }));
    if (reply.type !== 'render') unexpected(reply);
    return reply.data ?? undefined;
  }

  /** How many characters of text page `index` holds. */
  async textChars(index: number): Promise<number> {
    const reply = await this.#call((handle) => ({ type: 'text', handle, index }));
    if (reply.type !== 'text') unexpected(reply);
    return reply.chars;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeOn(this.#at);
  }

  /** Makes a call on the document, opening it again on a new thread if its own is stopped under it. */
  async #call(request: (handle: number) => Request): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new Error('the document is closed');
      const at = this.#at;
      try {
        return await at.thread.send(request(at.handle), { deadline: this.#options.deadline });
      } catch (error) {
        if (!(error instanceof RendererStopped) || attempt >= RETRIES) throw stoppedToRefusal(error);
      }
      // Opened again once, however many of its calls the stop caught.
      if (this.#at === at) {
        this.#reopening ??= this.#reopen(at).finally(() => {
          this.#reopening = undefined;
        });
      }
      await this.#reopening;
    }
  }

  async #reopen(from: Opened): Promise<void> {
    from.thread.released();
    const at = await openOnThread(this.#bytes, this.#options);
    this.#at = at;
    // Closed while it was opened again: the new copy is closed too.
    if (this.#closed) closeOn(at);
  }
}
