/**
 * An inference worker: holds its own onnxruntime sessions (created from the verified bytes
 * it is sent) and runs pipeline stages on request. onnxruntime-node's run() is synchronous,
 * and onnxruntime-web's WebAssembly runs on the thread that calls it, so inference must not
 * happen on the main thread, where it would stop every request.
 *
 * A thread may serve several versions at once, each its own engine (its dictionary and
 * parameters), when their graphs are the same: a session opened under a key (the graph's
 * verified digest, the runtime and the session options) is shared by every version loaded
 * on this thread with that key, and released with the last of them.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, parentPort } from 'node:worker_threads';
import { HotocrError, messageOf } from '../errors.js';
// The engine alone: the package index would also load sharp, 0.1 s more per thread start.
import { OcrEngine, type OcrTimings } from '../ocr/engine.js';
import type { RgbImage } from '../ocr/image.js';
import type { OcrParams } from '../ocr/params.js';
import type { OrtGraphSession, SessionOptions } from './ort-session.js';

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
  | { type: 'recognize'; id: number; engine: number; crops: RgbImage[] }
  /**
   * Frees a version's engine, and its sessions that no other version here shares. `last`:
   * no version is left on the thread, which stays to load another when `keep` (the reply
   * says whether it could) and ends otherwise.
   */
  | { type: 'release'; id: number; engine: number; last?: boolean; keep?: boolean };

export type WorkerReply =
  | { id: number; ok: true; result: unknown; timings: OcrTimings }
  | { id: number; ok: false; error: { code: string; message: string; name: string } };

const port = parentPort!;

/** A version loaded on this thread: its engine once made, and the sessions it holds. */
interface Loaded {
  engine?: OcrEngine;
  /** Opened for this version alone. */
  readonly own: OrtGraphSession[];
  /** Keys of the shared sessions it holds a reference to. */
  readonly keys: string[];
}
const loaded = new Map<number, Loaded>();
/** Sessions opened under a key, with how many versions on this thread hold each. */
const shared = new Map<string, { session: OrtGraphSession; refs: number }>();
/** This thread's nice value before loading lowered it (on Linux, getPriority(0) and setPriority(0) act on this thread alone). */
let servingNice: number | undefined;

/** Reads a whole file into memory that can be shared with other threads without a copy. */
function readShared(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const bytes = new Uint8Array(new SharedArrayBuffer(fstatSync(fd).size));
    for (let at = 0; at < bytes.byteLength; ) {
      const n = readSync(fd, bytes, at, bytes.byteLength - at, at);
      if (n === 0) throw new Error(`${path} ended early`);
      at += n;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * Frees a buffer now rather than when this thread's collector next runs (which, in a thread
 * that allocates little, can be many versions later): moved into a message that is never
 * delivered, it goes when the channel closes.
 */
function free(bytes: Uint8Array): void {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [bytes.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
}

const zero = (): OcrTimings => ({ det: 0, cls: 0, rec: 0, inference: 0, total: 0 });

function engineOf(id: number): OcrEngine {
  const engine = loaded.get(id)?.engine;
  if (!engine) throw new HotocrError('INFERENCE_FAILED', 'This model has been released.');
  return engine;
}

async function handle(
  msg: WorkerRequest,
): Promise<{ result: unknown; timings: OcrTimings; transfer?: ArrayBuffer[] }> {
  const timings = zero();
  switch (msg.type) {
    case 'load': {
      if (msg.nice !== undefined) {
        const own = getPriority(0);
        if (msg.nice > own) {
          setPriority(0, msg.nice);
          servingNice = own;
        }
      }
      // Only the runtime asked for is imported: a wasm-only thread never touches the native binding.
      let openSession: typeof import('./onnxruntime-node.js').openSession;
      try {
        ({ openSession } =
          msg.runtime === 'onnxruntime-wasm'
            ? await import('./onnxruntime-wasm.js')
            : await import('./onnxruntime-node.js'));
      } catch (cause) {
        const other = msg.runtime === 'onnxruntime-wasm' ? 'onnxruntime-node' : 'onnxruntime-wasm';
        throw new HotocrError(
          'LOAD_FAILED',
          `The ${msg.runtime} runtime cannot start on this machine (${messageOf(cause)}); packages that name no runtime can run on ${other} (--runtime ${other}).`,
          { cause },
        );
      }
      const version: Loaded = { own: [], keys: [] };
      // Known before anything opens: a load that fails is released by its engine like any other.
      loaded.set(msg.engine, version);
      const saved: Partial<Record<GraphRole, Uint8Array>> = {};
      /** Sessions taken as another version on this thread opened them. */
      let sharedHere = 0;
      /** Keeps a session for this version: shared under its key when it has one. */
      const hold = (role: GraphRole, s: OrtGraphSession) => {
        const key = msg.keys?.[role];
        if (key === undefined) version.own.push(s);
        else {
          shared.set(key, { session: s, refs: 1 });
          version.keys.push(key);
        }
        return s;
      };
      const open = async (role: GraphRole, bytes: Uint8Array | undefined) => {
        const key = msg.keys?.[role];
        const held = key === undefined ? undefined : shared.get(key);
        if (held) {
          held.refs++;
          sharedHere++;
          version.keys.push(key!);
          return held.session;
        }
        if (!bytes) {
          if (key === undefined) return undefined;
          throw new HotocrError(
            'LOAD_FAILED',
            `The ${role} graph was to be shared with a version on this thread, which no longer holds it.`,
          );
        }
        if (msg.optimized?.includes(role) === true) {
          // onnxruntime takes memory of this thread's own; the copy goes once it has read it.
          const own = new Uint8Array(bytes);
          try {
            return hold(role, await openSession(role, own, msg.session, { optimized: true }));
          } finally {
            free(own);
          }
        }
        return hold(
          role,
          msg.save?.includes(role)
            ? await openSaving(role, bytes, (b) => {
                saved[role] = b;
              })
            : await openSession(role, bytes, msg.session),
        );
      };
      /**
       * Opens a graph and keeps its optimized form, written by onnxruntime to a folder only
       * this thread uses and read back at once. Where that cannot be done the graph opens all
       * the same, and the threads after this one optimize it themselves.
       */
      const openSaving = async (role: GraphRole, bytes: Uint8Array, keep: (b: Uint8Array) => void) => {
        let dir: string;
        try {
          dir = mkdtempSync(join(tmpdir(), 'hotocr-graph-'));
        } catch {
          return openSession(role, bytes, msg.session);
        }
        try {
          const path = join(dir, `${role}.onnx`);
          let s: OrtGraphSession;
          try {
            s = await openSession(role, bytes, msg.session, { saveTo: path });
          } catch {
            // Not written, or not a graph: opened without saving, where a graph that is not one fails.
            return await openSession(role, bytes, msg.session);
          }
          try {
            keep(readShared(path));
          } catch {
            // Not kept: the session is open all the same.
          }
          return s;
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
      let det: OrtGraphSession | undefined;
      let rec: OrtGraphSession | undefined;
      let cls: OrtGraphSession | undefined;
      /** Graphs to save whose optimized form could not be kept: their bytes go back for the next threads. */
      const unsaved: Partial<Record<GraphRole, Uint8Array>> = {};
      let opened = false;
      try {
        det = await open('det', msg.graphs.det);
        rec = await open('rec', msg.graphs.rec);
        cls = await open('cls', msg.graphs.cls);
        opened = true;
      } finally {
        // The bytes were moved to this thread for it alone, and onnxruntime keeps its own copy
        // (optimized graphs are shared with the main thread, which keeps them).
        for (const [role, bytes] of Object.entries(msg.graphs) as [GraphRole, Uint8Array | undefined][]) {
          if (!bytes || bytes.buffer instanceof SharedArrayBuffer) continue;
          if (opened && msg.save?.includes(role) && !saved[role]) unsaved[role] = bytes;
          else free(bytes);
        }
      }
      if (!rec)
        throw new HotocrError('LOAD_FAILED', 'No recognition graph was sent to the inference thread.');
      version.engine = await OcrEngine.create(
        { ...(det ? { det } : {}), rec, ...(cls ? { cls } : {}) },
        msg.dictionary,
        msg.params,
      );
      // Optimized graphs are in shared memory: the main thread sees them without a copy.
      return {
        result: { optimized: saved, unsaved, shared: sharedHere },
        timings,
        transfer: Object.values(unsaved).map((b) => b.buffer as ArrayBuffer),
      };
    }
    case 'locate': {
      const { boxes, crops } = await engineOf(msg.engine).locate(msg.image, timings);
      return { result: { boxes, crops }, timings, transfer: crops.map((c) => c.data.buffer as ArrayBuffer) };
    }
    case 'serve':
      if (servingNice !== undefined) {
        try {
          setPriority(0, servingNice);
        } catch (cause) {
          throw new HotocrError(
            'LOAD_FAILED',
            `An inference thread could not get its priority back after loading (${messageOf(cause)}); start the server with --load-nice 0 or give it CAP_SYS_NICE.`,
            { cause },
          );
        }
        servingNice = undefined;
      }
      return { result: null, timings };
    case 'recognize':
      return { result: await engineOf(msg.engine).recognizeBatch(msg.crops, timings), timings };
    case 'release': {
      const version = loaded.get(msg.engine);
      loaded.delete(msg.engine);
      const done = [...(version?.own ?? [])];
      for (const key of version?.keys ?? []) {
        const s = shared.get(key)!;
        if (--s.refs > 0) continue;
        shared.delete(key);
        done.push(s.session);
      }
      await Promise.all(done.map((s) => s.release()));
      if (msg.last !== true) return { result: null, timings };
      // A thread is kept only at the priority it serves at (a load that failed may have lowered it).
      let kept = msg.keep === true;
      if (kept && servingNice !== undefined) {
        try {
          setPriority(0, servingNice);
          servingNice = undefined;
        } catch {
          kept = false;
        }
      }
      return { result: kept, timings };
    }
  }
}

// One task at a time: runs on this thread's sessions never overlap, so each task's timings
// are its own, and queued tasks wait here rather than inside onnxruntime.
let queue: Promise<unknown> = Promise.resolve();

port.on('message', (msg: WorkerRequest) => {
  queue = queue
    .then(() => handle(msg))
    .then(
      ({ result, timings, transfer }) => {
        port.postMessage({ id: msg.id, ok: true, result, timings } satisfies WorkerReply, transfer ?? []);
        if (msg.type === 'release' && msg.last === true && result !== true) port.close();
      },
      (error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        const code = error instanceof HotocrError ? error.code : 'INFERENCE_FAILED';
        port.postMessage({
          id: msg.id,
          ok: false,
          error: { code, message: e.message, name: e.name },
        } satisfies WorkerReply);
      },
    );
});
