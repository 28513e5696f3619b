/**
 * How bytes travel to an inference thread: moved (transferred) where they may be, copied
 * where they must stay, sent as they are where they are shared.
 */
import type { RgbImage } from '../ocr/index.js';
import type { Graphs } from './inference-protocol.js';

/**
 * What a thread is sent of the graphs. Verified bytes: a copy of its own, moved to it (not
 * cloned: a structured clone held the main thread about 67 ms per swap), which it hands to
 * onnxruntime and frees at once (a thread serves one version after another, and a copy left
 * for its collector to find held about 230 MiB more over 120 swaps). A buffer in `movable`
 * that holds its bytes alone is moved itself rather than copied (and emptied here): the last
 * thread's share, when the caller reads the bytes no more. Optimized graphs, in shared
 * memory, are sent as they are: no copy here.
 */
export function copyFor(
  graphs: Graphs,
  movable: ReadonlySet<Uint8Array>,
): { graphs: Graphs; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const own = (bytes: Uint8Array): Uint8Array => {
    if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
    const sent = movable.has(bytes) && holdsAlone(bytes) ? bytes : new Uint8Array(bytes);
    // Distinct buffers: every copy is new, and a buffer is moved once at most.
    transfer.push(bufferOf(sent));
    return sent;
  };
  return {
    graphs: {
      rec: own(graphs.rec),
      ...(graphs.det ? { det: own(graphs.det) } : {}),
      ...(graphs.cls ? { cls: own(graphs.cls) } : {}),
    },
    transfer,
  };
}

/** Whether a view covers its whole (unshared) buffer, which can then be moved without taking anything else. */
function holdsAlone(bytes: Uint8Array): boolean {
  return (
    bytes.buffer instanceof ArrayBuffer &&
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength
  );
}

/** The buffer of a view made here (never shared memory), as a transfer list takes it. */
export function bufferOf(bytes: Uint8Array): ArrayBuffer {
  const { buffer } = bytes;
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError('Shared memory is sent as it is, not moved.');
  return buffer;
}

/** Copies into a fresh, transferable buffer: Node's pooled Buffers must not be detached. */
export function transferable(image: RgbImage): RgbImage {
  return { data: new Uint8Array(image.data), width: image.width, height: image.height };
}
