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
}

/**
 * The document's pages read as a searchable PDF (text-layer.ts). What needs PDFium or sharp
 * (whether a page has text of its own; TIFF pages as JPEG) is done here; the PDF itself is
 * parsed and written by pdf-lib on a thread of its own, stopped at `deadline`, and within
 * {@link TEXT_LAYER_HEAP_MB} of heap (DOCUMENT_TOO_LARGE past it).
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
  return onThread(
    { kind: doc.kind, pages: layered, ...(doc.kind === 'pdf' ? { bytes: new Uint8Array(doc.bytes) } : {}) },
    options.deadline,
  );
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

type Reply = { ok: true; pdf: Uint8Array } | { ok: false; error: SerializedError };

/** Writes the copy on a thread of its own, which ends with it (or is stopped at `deadline`). */
function onThread(input: LayerInput, deadline: number | undefined): Promise<Uint8Array> {
  const transfer = [input.bytes, ...input.pages.map((p) => (p.source === 'image' ? p.jpeg : undefined))]
    .filter((b): b is Uint8Array => b !== undefined)
    .map((b) => b.buffer as ArrayBuffer);
  const worker = startThread(new URL('./text-layer-worker.js', import.meta.url), {
    resourceLimits: { maxOldGenerationSizeMb: TEXT_LAYER_HEAP_MB },
  });
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      fn();
    };
    const timer =
      deadline === undefined
        ? undefined
        : setTimeout(
            () =>
              settle(() =>
                reject(
                  new HotocrError(
                    'TIMEOUT',
                    'The searchable PDF was still being written at the request deadline (--request-timeout-ms); ask for JSON, fewer pages, or retry later.',
                  ),
                ),
              ),
            Math.max(0, deadline - performance.now()),
          );
    worker.on('message', (reply: Reply) =>
      settle(() => (reply.ok ? resolve(reply.pdf) : reject(deserializeError(reply.error)))),
    );
    worker.on('error', (error: Error & { code?: string }) =>
      settle(() =>
        reject(
          error.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new DocumentError(
                'DOCUMENT_TOO_LARGE',
                `Writing the searchable PDF needs more than ${TEXT_LAYER_HEAP_MB} MiB (the PDF holds too many objects); ask for JSON instead.`,
                { cause: error },
              )
            : error,
        ),
      ),
    );
    worker.on('exit', (code) =>
      settle(() => reject(new Error(`The thread writing the searchable PDF stopped (exit code ${code}).`))),
    );
    worker.postMessage(input, transfer);
  });
}
