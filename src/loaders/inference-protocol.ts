/**
 * What the main thread and an inference thread (ocr-worker.ts) say to each other: a request
 * per kind, and for each kind the reply it gets, so that neither side casts what it is sent.
 */
import type { Located, OcrTimings } from '../ocr/engine.js';
import type { RgbImage } from '../ocr/image.js';
import type { RecognizedText } from '../ocr/index.js';
import type { OcrParams } from '../ocr/params.js';
import type { Inset } from '../ocr/tensors.js';
import type { SerializedError } from '../thread-errors.js';
import type { SessionOptions } from './ort-session.js';

/** The built-in runtimes a thread can open graphs with. */
export type BuiltinRuntime = 'onnxruntime-node' | 'onnxruntime-wasm';

export type GraphRole = 'det' | 'rec' | 'cls';
export type Graphs = { det?: Uint8Array; rec: Uint8Array; cls?: Uint8Array };

export type WorkerRequest =
  | {
      type: 'load';
      id: number;
      /** The version's engine on this thread, named by the pool: reads and its release name it. */
      engine: number;
      /** The graphs to open; a graph whose key is open on this thread already is not sent. */
      graphs: Partial<Graphs>;
      /**
       * Keys to share sessions under (the graph's verified digest, runtime and options): a
       * key open here already is taken as it is, a new one is opened and kept under it.
       */
      keys?: Partial<Record<GraphRole, string>>;
      /**
       * Graphs sent in onnxruntime-node's own optimized form (made in this process), in memory
       * shared with the main thread: copied, then opened as they are.
       */
      optimized?: GraphRole[];
      /**
       * Graphs whose optimized form to send back (onnxruntime-node), in shared memory, for the
       * next threads to open. Where one cannot be saved, its bytes are sent back instead.
       */
      save?: GraphRole[];
      dictionary: string;
      params: OcrParams;
      runtime: BuiltinRuntime;
      session: SessionOptions;
      /** Load (and warm up) at this nice value; `serve` gives the thread its priority back. */
      nice?: number;
    }
  | { type: 'serve'; id: number }
  | { type: 'locate'; id: number; engine: number; image: RgbImage }
  | { type: 'recognize'; id: number; engine: number; crops: RgbImage[]; insets?: Inset[] }
  /**
   * Frees a version's engine, and its sessions that no other version here shares. `last`:
   * no version is left on the thread, which stays to load another when `keep` (the reply
   * says whether it could) and ends otherwise.
   */
  | { type: 'release'; id: number; engine: number; last?: boolean; keep?: boolean };

/** What a load sends back. */
export interface LoadResult {
  /** Graphs asked to be saved (`save`), in onnxruntime-node's optimized form, in shared memory. */
  readonly optimized: Partial<Record<GraphRole, Uint8Array>>;
  /** Graphs asked to be saved whose optimized form could not be kept: their bytes, moved back. */
  readonly unsaved: Partial<Record<GraphRole, Uint8Array>>;
  /** Sessions taken as another version on this thread had opened them. */
  readonly shared: number;
}

/** The result each kind of request is answered with. */
export interface Results {
  load: LoadResult;
  serve: null;
  locate: Located;
  recognize: RecognizedText[];
  /** With `last`: whether the thread stays to load another version; null otherwise. */
  release: boolean | null;
}

export type Kind = WorkerRequest['type'];

/** A request of this kind, without its id (the sending side numbers it). */
export type RequestOf<K extends Kind> = Omit<Extract<WorkerRequest, { type: K }>, 'id'>;

/** Any request without its id. */
export type Request = { [K in Kind]: RequestOf<K> }[Kind];

/** The answer to a request of this kind. */
export type ReplyOf<K extends Kind> = {
  readonly id: number;
  readonly ok: true;
  readonly type: K;
  readonly result: Results[K];
  readonly timings: OcrTimings;
};

/** Any successful reply. */
export type OkReply = { [K in Kind]: ReplyOf<K> }[Kind];

export type WorkerReply =
  | OkReply
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

/** Whether a successful reply answers a request of kind `type`. */
export function isReplyTo<K extends Kind>(reply: OkReply, type: K): reply is Extract<OkReply, { type: K }> {
  return reply.type === type;
}
