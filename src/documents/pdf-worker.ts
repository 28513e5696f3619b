/**
 * The PDF rendering thread: PDFium (WebAssembly) runs here, so that opening, measuring and
 * rendering pages never holds up the main thread, which answers every request (a Letter
 * page at 150 dpi takes about 11 ms, at 600 dpi over ten times that).
 */
import { parentPort } from 'node:worker_threads';
import { HotocrError } from '../errors.js';
import { serializeError } from '../thread-errors.js';
import { PdfOpenError } from './pdf-errors.js';
import type { PdfReply, PdfRequest } from './pdf-thread.js';
import { PdfiumDocument, pdfiumHeapBytes } from './pdfium.js';

const port = parentPort!;

/** The documents open on this thread, by the handle the main thread knows them by. */
class Documents {
  readonly #open = new Map<number, PdfiumDocument>();
  #next = 1;

  async handle(msg: PdfRequest): Promise<{ reply: PdfReply; transfer?: ArrayBuffer[] }> {
    switch (msg.type) {
      case 'open': {
        try {
          const doc = await PdfiumDocument.open(msg.bytes, msg.password);
          const handle = this.#next++;
          this.#open.set(handle, doc);
          return {
            reply: {
              id: msg.id,
              ok: true,
              type: 'open',
              handle,
              pageCount: doc.pageCount,
              encrypted: doc.encrypted,
            },
          };
        } catch (error) {
          if (!(error instanceof PdfOpenError)) throw error;
          return { reply: { id: msg.id, ok: true, type: 'refused', reason: error.reason } };
        }
      }
      case 'sizes':
        return {
          reply: {
            id: msg.id,
            ok: true,
            type: 'sizes',
            sizes: msg.indexes.map((i) => this.#doc(msg.handle).pageSize(i) ?? null),
          },
        };
      case 'render': {
        const data = this.#doc(msg.handle).render(msg.index, msg.width, msg.height);
        return {
          reply: { id: msg.id, ok: true, type: 'render', data: data ?? null },
          ...(data ? { transfer: [data.buffer as ArrayBuffer] } : {}),
        };
      }
      case 'text':
        return {
          reply: { id: msg.id, ok: true, type: 'text', chars: this.#doc(msg.handle).textChars(msg.index) },
        };
      case 'close':
        this.#open.get(msg.handle)?.close();
        this.#open.delete(msg.handle);
        return { reply: { id: msg.id, ok: true, type: 'close', heapBytes: pdfiumHeapBytes() } };
    }
  }

  #doc(handle: number): PdfiumDocument {
    const doc = this.#open.get(handle);
    if (!doc) throw new Error('the document is closed');
    return doc;
  }
}

const documents = new Documents();
/** The calls, answered one at a time in the order they came: the main thread counts on it. */
let queue: Promise<void> = Promise.resolve();

/** A call whose deadline passed while it waited for its turn: refused, not started. */
async function handle(msg: PdfRequest): Promise<{ reply: PdfReply; transfer?: ArrayBuffer[] }> {
  if (msg.until !== undefined && performance.timeOrigin + performance.now() > msg.until)
    throw new HotocrError(
      'TIMEOUT',
      'The document waited for the PDF renderer past the request deadline (--request-timeout-ms); retry later.',
    );
  return documents.handle(msg);
}

port.on('message', (msg: PdfRequest) => {
  queue = queue.then(() =>
    handle(msg).then(
      ({ reply, transfer }) => port.postMessage(reply, transfer ?? []),
      (error: unknown) => {
        // PDFium trapped (out of its memory, an abort): its state cannot be trusted for the
        // next document. The thread ends; the main thread starts another for the next call.
        const fatal = error instanceof Error && error.name === 'RuntimeError';
        port.postMessage({ id: msg.id, ok: false, error: serializeError(error), fatal } satisfies PdfReply);
        if (fatal) process.exit(1);
      },
    ),
  );
});
