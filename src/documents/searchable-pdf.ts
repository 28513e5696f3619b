import sharp from 'sharp';
import { DocumentError, HotocrError } from '../errors.js';
import { deserializeError, type SerializedError } from '../thread-errors.js';
import { startThread } from '../threads.js';
import type { OpenDocument } from './document.js';
import type { LayerInput, LayerPage, PageText } from './text-layer.js';

export type { PageText } from './text-layer.js';

/**
 * Most heap the thread writing a searchable copy may take: a PDF of a few hundred thousand
 * objects (4 MB with object streams) needs about 1 GiB in pdf-lib.
 */
export const TEXT_LAYER_HEAP_MB = 1024;

export interface SearchableOptions {
  /** A performance.now() time: the copy not written by then is given up (TIMEOUT), its thread stopped. */
  readonly deadline?: number;
  /** The client went away: the copy is given up (REQUEST_ABORTED), its thread stopped. */
  readonly signal?: AbortSignal;
  /** Heap of the writing thread, in MiB (default {@link TEXT_LAYER_HEAP_MB}). */
  readonly heapMb?: number;
}

/**
 * The document's pages read as a searchable PDF (text-layer.ts). What needs PDFium or sharp
 * (whether a page has text of its own; TIFF pages as JPEG) is done here; the PDF itself is
 * parsed and written by pdf-lib on a thread of its own, one copy at a time in the process
 * (so that the heap they need is counted once), stopped at `deadline` or when `signal`
 * fires, within {@link TEXT_LAYER_HEAP_MB} of heap (DOCUMENT_TOO_LARGE past it).
 */
export async function searchablePdf(
  doc: OpenDocument,
  pages: readonly PageText[],
  options: SearchableOptions = {},
): Promise<Uint8Array> {
  checkRewritable(doc);
  const layered: LayerPage[] = [];
  for (const page of pages) {
    if (doc.kind === 'pdf') {
      layered.push({ ...page, source: 'pdf', hasText: await doc.hasText(page.page) });
      continue;
    }
    const image = await doc.render(page.page);
    const jpeg = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .jpeg({ quality: 85 })
      .toBuffer();
    layered.push({
      ...page,
      source: 'image',
      jpeg: new Uint8Array(jpeg),
      size: { width: (image.width * 72) / doc.dpi, height: (image.height * 72) / doc.dpi },
    });
  }
  const release = await writerTurn(options);
  try {
    return await onThread(
      { kind: doc.kind, pages: layered, ...(doc.kind === 'pdf' ? { bytes: new Uint8Array(doc.bytes) } : {}) },
      options,
    );
  } finally {
    release();
  }
}

/**
 * Throws DOCUMENT_ENCRYPTED for a document no searchable copy can be written of: an
 * encrypted PDF (one that opens without a password, an owner password restricting it) is
 * read, but its pages cannot be rewritten. Asked before any page is read.
 */
export function checkRewritable(doc: Pick<OpenDocument, 'encrypted'>): void {
  if (doc.encrypted)
    throw new DocumentError(
      'DOCUMENT_ENCRYPTED',
      'The PDF is encrypted (with a password, or an owner password that restricts it): it can be read as JSON, but no searchable copy of it can be written. Ask for JSON, or remove its encryption first (qpdf --decrypt).',
    );
}

function pastDeadline(): HotocrError {
  return new HotocrError(
    'TIMEOUT',
    'The searchable PDF was not written by the request deadline (--request-timeout-ms); ask for the text alone (JSON), fewer pages, or retry later.',
  );
}

function aborted(): HotocrError {
  return new HotocrError('REQUEST_ABORTED', 'The client went away before the searchable PDF was written.');
}

/** The copies waiting for their turn to be written: one at a time in the process. */
const writers: { busy: boolean; waiting: (() => void)[] } = { busy: false, waiting: [] };

/** Waits for the writer's turn (not past the deadline, nor once the client has gone); returns its release. */
async function writerTurn({ deadline, signal }: SearchableOptions): Promise<() => void> {
  if (writers.busy) {
    await new Promise<void>((resolve, reject) => {
      const turn = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', gone);
        resolve();
      };
      const leave = (error: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', gone);
        writers.waiting.splice(writers.waiting.indexOf(turn), 1);
        reject(error);
      };
      const gone = () => leave(aborted());
      const timer =
        deadline === undefined
          ? undefined
          : setTimeout(() => leave(pastDeadline()), Math.max(0, deadline - performance.now()));
      signal?.addEventListener('abort', gone, { once: true });
      writers.waiting.push(turn);
    });
  } else writers.busy = true;
  return () => {
    const next = writers.waiting.shift();
    if (next) next();
    else writers.busy = false;
  };
}

type Reply = { ok: true; pdf: Uint8Array } | { ok: false; error: SerializedError };

/** Writes the copy on a thread of its own, which ends with it (or is stopped at the deadline, or on abort). */
function onThread(input: LayerInput, { deadline, signal, heapMb = TEXT_LAYER_HEAP_MB }: SearchableOptions) {
  if (signal?.aborted) return Promise.reject(aborted());
  if (deadline !== undefined && performance.now() >= deadline) return Promise.reject(pastDeadline());
  const transfer = [input.bytes, ...input.pages.map((p) => (p.source === 'image' ? p.jpeg : undefined))]
    .filter((b): b is Uint8Array => b !== undefined)
    .map((b) => b.buffer as ArrayBuffer);
  const worker = startThread(new URL('./text-layer-worker.js', import.meta.url), {
    resourceLimits: { maxOldGenerationSizeMb: heapMb },
  });
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', gone);
      void worker.terminate();
      fn();
    };
    const gone = () => settle(() => reject(aborted()));
    const timer =
      deadline === undefined
        ? undefined
        : setTimeout(() => settle(() => reject(pastDeadline())), Math.max(0, deadline - performance.now()));
    signal?.addEventListener('abort', gone, { once: true });
    worker.on('message', (reply: Reply) =>
      settle(() => (reply.ok ? resolve(reply.pdf) : reject(deserializeError(reply.error)))),
    );
    worker.on('error', (error: Error & { code?: string }) =>
      settle(() =>
        reject(
          error.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new DocumentError(
                'DOCUMENT_TOO_LARGE',
                `Writing the searchable PDF needs more than ${heapMb} MiB (the PDF holds too many objects); read its text alone (JSON) instead.`,
                { cause: error },
              )
            : error,
        ),
      ),
    );
    worker.on('exit', (code) =>
      settle(() => reject(new Error(`The thread writing the searchable PDF stopped (exit code ${code}).`))),
    );
    try {
      worker.postMessage(input, transfer);
    } catch (error) {
      settle(() => reject(error));
    }
  });
}
