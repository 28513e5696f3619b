/**
 * The main thread's side of the PDF rendering thread (pdf-worker.ts): a PDF open there, seen
 * through asynchronous calls. One thread per process, started with the first PDF; idle, it
 * does not hold the process open, and one that died is started again for the next PDF.
 */
import type { Worker } from 'node:worker_threads';
import { DocumentError } from '../errors.js';
import { deserializeError, type SerializedError } from '../thread-errors.js';
import { startThread } from '../threads.js';
import { PdfOpenError } from './pdf-errors.js';

type Size = { width: number; height: number };

export type PdfRequest =
  | { id: number; type: 'open'; bytes: Uint8Array }
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
  | { id: number; ok: true; type: 'close' }
  | { id: number; ok: false; error: SerializedError };

type Answer = Extract<PdfReply, { ok: true }>;
type Request = PdfRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

class PdfThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(reply: Answer): void; reject(error: Error): void }>();
  #next = 0;
  dead = false;

  constructor() {
    this.#worker = startThread(new URL('./pdf-worker.js', import.meta.url));
    this.#worker.unref();
    this.#worker.on('message', (reply: PdfReply) => {
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (reply.ok) p?.resolve(reply);
      else p?.reject(deserializeError(reply.error));
    });
    const fail = (why: string) => {
      this.dead = true;
      const error = new DocumentError(
        'PAGE_RENDER_FAILED',
        `The PDF renderer stopped (${why}); the document is refused.`,
      );
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', (e) => fail(e.message));
    this.#worker.on('exit', (code) => fail(`exit code ${code}`));
  }

  send(request: Request, transfer: ArrayBuffer[] = []): Promise<Answer> {
    if (this.dead)
      return Promise.reject(
        new DocumentError('PAGE_RENDER_FAILED', 'The PDF renderer stopped; the document is refused.'),
      );
    const id = this.#next++;
    this.#worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id }, transfer);
    });
  }
}

const current: { thread: PdfThread | undefined } = { thread: undefined };

function pdfThread(): PdfThread {
  if (!current.thread || current.thread.dead) current.thread = new PdfThread();
  return current.thread;
}

/** A reply of another kind than asked: a defect, said as one. */
function unexpected(reply: Answer): never {
  throw new Error(`The PDF renderer answered with a ${reply.type} reply.`);
}

/** A PDF open on the rendering thread. Close it; closing twice is harmless. */
export class RemotePdf {
  readonly #thread: PdfThread;
  readonly #handle: number;
  #closed = false;

  private constructor(
    thread: PdfThread,
    handle: number,
    readonly pageCount: number,
    readonly encrypted: boolean,
  ) {
    this.#thread = thread;
    this.#handle = handle;
  }

  /** Opens the PDF in a copy of `bytes` on the rendering thread, or throws PdfOpenError. */
  static async open(bytes: Uint8Array): Promise<RemotePdf> {
    const thread = pdfThread();
    const copy = new Uint8Array(bytes);
    const reply = await thread.send({ type: 'open', bytes: copy }, [copy.buffer]);
    if (reply.type === 'refused') throw new PdfOpenError(reply.reason);
    if (reply.type !== 'open') unexpected(reply);
    return new RemotePdf(thread, reply.handle, reply.pageCount, reply.encrypted);
  }

  /** The sizes of pages `indexes` (from 0) in points, read without loading them; undefined where unreadable. */
  async pageSizes(indexes: number[]): Promise<(Size | undefined)[]> {
    const reply = await this.#thread.send({ type: 'sizes', handle: this.#handle, indexes });
    if (reply.type !== 'sizes') unexpected(reply);
    return reply.sizes.map((s) => s ?? undefined);
  }

  /** Page `index` (from 0) rendered at `width` x `height` onto white, as RGB; undefined when PDFium cannot load it. */
  async render(index: number, width: number, height: number): Promise<Uint8Array | undefined> {
    const reply = await this.#thread.send({ type: 'render', handle: this.#handle, index, width, height });
    if (reply.type !== 'render') unexpected(reply);
    return reply.data ?? undefined;
  }

  /** How many characters of text page `index` holds. */
  async textChars(index: number): Promise<number> {
    const reply = await this.#thread.send({ type: 'text', handle: this.#handle, index });
    if (reply.type !== 'text') unexpected(reply);
    return reply.chars;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Nothing waits for it: a thread that died has freed the document with itself.
    this.#thread.send({ type: 'close', handle: this.#handle }).catch(() => {});
  }
}
