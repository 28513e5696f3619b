/**
 * The main thread's side of the PDF rendering thread (pdf-worker.ts): a PDF open there, seen
 * through asynchronous calls. One thread per process, started with the first PDF; idle, it
 * does not hold the process open.
 *
 * The thread answers its calls one at a time, in order, so the oldest call waiting for an
 * answer is the one PDFium is working on. WebAssembly cannot be interrupted, so a thread is
 * stopped, and another started for the next call, when:
 * - the call it is working on is still running at its request's deadline (a page built to
 *   keep a renderer busy for minutes must not hold up every other document): that call
 *   fails with TIMEOUT;
 * - it dies (PDFium trapped: out of its memory, an abort): the call it was working on fails
 *   with PAGE_RENDER_FAILED;
 * - its PDFium memory has grown past {@link RETIRE_HEAP_BYTES} (WebAssembly memory never
 *   shrinks, so one heavy page would otherwise keep its peak for the life of the process):
 *   it is retired once its last document is closed, and nothing fails.
 * The other calls it held had no part in it: their documents are opened again on the new
 * thread and the calls made there, so they go on as if nothing happened.
 */
import type { Worker } from 'node:worker_threads';
import { DocumentError, HotocrError } from '../errors.js';
import { deserializeError, type SerializedError } from '../thread-errors.js';
import { startThread } from '../threads.js';
import { PdfOpenError } from './pdf-errors.js';

type Size = { width: number; height: number };

/** PDFium memory past which a thread is retired once its documents are closed. */
export const RETIRE_HEAP_BYTES = 512 * 1024 * 1024;
/** Times a call is made again on a new thread after the one it waited on was stopped for another's sake. */
const RETRIES = 3;

export type PdfRequest =
  | { id: number; type: 'open'; bytes: Uint8Array; password?: Uint8Array }
  | { id: number; type: 'sizes'; handle: number; indexes: number[] }
  | { id: number; type: 'render'; handle: number; index: number; width: number; height: number }
  | { id: number; type: 'text'; handle: number; index: number }
  | { id: number; type: 'close'; handle: number };

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
type Request = PdfRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

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
    return new Promise<Answer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline });
      this.#worker.postMessage({ ...request, id }, transfer);
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
      p?.reject(deserializeError(reply.error));
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

  /** Watches the call the thread is working on: the oldest one unanswered. */
  #watchHead(): void {
    clearTimeout(this.#watch);
    this.#watch = undefined;
    if (this.dead) return;
    const head = this.#pending.entries().next().value;
    if (!head || head[1].deadline === undefined) return;
    const [id, { deadline }] = head;
    this.#watch = setTimeout(
      () => {
        if (this.dead || this.#pending.keys().next().value !== id) return;
        stats.deadline++;
        this.#stop(pastDeadline());
      },
      Math.max(0, deadline - performance.now()),
    );
    this.#watch.unref();
  }

  #retireIfIdle(): void {
    if (!this.retired || this.dead || this.#open > 0 || this.#pending.size > 0) return;
    stats.retired++;
    this.#stop(undefined);
  }

  /** The thread died on its own: PDFium trapped, or the thread failed. */
  #died(why: string): void {
    if (this.dead) return;
    stats.crashed++;
    this.#stop(
      new DocumentError(
        'PAGE_RENDER_FAILED',
        `The PDF renderer stopped (${why}) while reading the document; it is refused.`,
      ),
    );
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

const current: { thread: PdfThread | undefined } = { thread: undefined };

/** The thread new documents are opened on. */
function pdfThread(): PdfThread {
  if (!current.thread || current.thread.dead || current.thread.retired) current.thread = new PdfThread();
  return current.thread;
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

/** A call still stopped after its retries: said as the document's failure. */
function stoppedToRefusal(error: unknown): unknown {
  if (!(error instanceof RendererStopped)) return error;
  return new DocumentError(
    'PAGE_RENDER_FAILED',
    'The PDF renderer was stopped again and again while the document waited; it is refused. Retry later.',
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
    if (this.#closed) throw new Error('the document is closed');
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#at.thread.send(request(this.#at.handle), { deadline: this.#options.deadline });
      } catch (error) {
        if (!(error instanceof RendererStopped) || attempt >= RETRIES) throw stoppedToRefusal(error);
      }
      this.#at.thread.released();
      this.#at = await openOnThread(this.#bytes, this.#options);
      // Closed while it was opened again: the new copy is closed too.
      if (this.#closed) {
        closeOn(this.#at);
        throw new Error('the document is closed');
      }
    }
  }
}
