/**
 * A thread that writes one searchable PDF (text-layer.ts) and ends: pdf-lib parses and writes
 * the whole document in JavaScript, seconds for a PDF of many objects, which must not hold up
 * the main thread that answers every request.
 */
import { parentPort } from 'node:worker_threads';
import { serializeError } from '../thread-errors.js';
import { type LayerInput, layeredPdf } from './text-layer.js';

const port = parentPort!;
port.once('message', (input: LayerInput) => {
  layeredPdf(input).then(
    (pdf) => port.postMessage({ ok: true, pdf }, [pdf.buffer as ArrayBuffer]),
    (error: unknown) => port.postMessage({ ok: false, error: serializeError(error) }),
  );
});
