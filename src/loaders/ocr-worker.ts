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
import { HotocrError, InferenceError, messageOf } from '../errors.js';
// The engine alone: the package index would also load sharp, 0.1 s more per thread start.
import { OcrEngine, type OcrTimings } from '../ocr/engine.js';
import { serializeError } from '../thread-errors.js';
import type { GraphRole, Kind, Results, WorkerReply, WorkerRequest } from './inference-protocol.js';
import type { OrtGraphSession } from './ort-session.js';

const port = parentPort!;

/** A version loaded on this thread: its engine once made, and the sessions it holds. */
interface Loaded {
  engine?: OcrEngine;
  /** Opened for this version alone. */
  readonly own: OrtGraphSession[];
  /** Keys of the shared sessions it holds a reference to. */
  readonly keys: string[];
}

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

/** A result with its kind, and the buffers to move with it. */
type Answer = {
  [K in Kind]: { type: K; result: Results[K]; timings: OcrTimings; transfer?: ArrayBuffer[] };
}[Kind];

/** What this thread holds: the versions loaded on it and their sessions, and its priority. */
class InferenceWorker {
  readonly #loaded = new Map<number, Loaded>();
  /** Sessions opened under a key, with how many versions on this thread hold each. */
  readonly #shared = new Map<string, { session: OrtGraphSession; refs: number }>();
  /** This thread's nice value before loading lowered it (on Linux, getPriority(0) and setPriority(0) act on this thread alone). */
  #servingNice: number | undefined;
  /**
   * One task at a time: runs on this thread's sessions never overlap, so each task's timings
   * are its own, and queued tasks wait here rather than inside onnxruntime.
   */
  #queue: Promise<unknown> = Promise.resolve();

  /** Runs `msg` once the tasks before it are done. */
  enqueue(msg: WorkerRequest): Promise<Answer> {
    const run = this.#queue.then(() => this.handle(msg));
    this.#queue = run.catch(() => {});
    return run;
  }

  #engineOf(id: number): OcrEngine {
    const engine = this.#loaded.get(id)?.engine;
    if (!engine) throw new HotocrError('INFERENCE_FAILED', 'This model has been released.');
    return engine;
  }

  async handle(msg: WorkerRequest): Promise<Answer> {
    const timings = zero();
    switch (msg.type) {
      case 'load': {
        if (msg.nice !== undefined) {
          const own = getPriority(0);
          if (msg.nice > own) {
            setPriority(0, msg.nice);
            this.#servingNice = own;
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
        this.#loaded.set(msg.engine, version);
        const saved: Partial<Record<GraphRole, Uint8Array>> = {};
        /** Sessions taken as another version on this thread opened them. */
        let sharedHere = 0;
        /** Keeps a session for this version: shared under its key when it has one. */
        const hold = (role: GraphRole, s: OrtGraphSession) => {
          const key = msg.keys?.[role];
          if (key === undefined) version.own.push(s);
          else {
            this.#shared.set(key, { session: s, refs: 1 });
            version.keys.push(key);
          }
          return s;
        };
        const open = async (role: GraphRole, bytes: Uint8Array | undefined) => {
          const key = msg.keys?.[role];
          const held = key === undefined ? undefined : this.#shared.get(key);
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
          type: 'load',
          result: { optimized: saved, unsaved, shared: sharedHere },
          timings,
          transfer: Object.values(unsaved).map((b) => b.buffer as ArrayBuffer),
        };
      }
      case 'locate': {
        const located = await this.#engineOf(msg.engine).locate(msg.image, timings);
        return {
          type: 'locate',
          result: located,
          timings,
          transfer: located.crops.map((c) => c.data.buffer as ArrayBuffer),
        };
      }
      case 'serve':
        if (this.#servingNice !== undefined) {
          try {
            setPriority(0, this.#servingNice);
          } catch (cause) {
            throw new HotocrError(
              'LOAD_FAILED',
              `An inference thread could not get its priority back after loading (${messageOf(cause)}); start the server with --load-nice 0 or give it CAP_SYS_NICE.`,
              { cause },
            );
          }
          this.#servingNice = undefined;
        }
        return { type: 'serve', result: null, timings };
      case 'recognize':
        return {
          type: 'recognize',
          result: await this.#engineOf(msg.engine).recognizeBatch(msg.crops, timings, msg.insets),
          timings,
        };
      case 'release': {
        const version = this.#loaded.get(msg.engine);
        this.#loaded.delete(msg.engine);
        const done = [...(version?.own ?? [])];
        for (const key of version?.keys ?? []) {
          const s = this.#shared.get(key)!;
          if (--s.refs > 0) continue;
          this.#shared.delete(key);
          done.push(s.session);
        }
        await Promise.all(done.map((s) => s.release()));
        if (msg.last !== true) return { type: 'release', result: null, timings };
        // A thread is kept only at the priority it serves at (a load that failed may have lowered it).
        let kept = msg.keep === true;
        if (kept && this.#servingNice !== undefined) {
          try {
            setPriority(0, this.#servingNice);
            this.#servingNice = undefined;
          } catch {
            kept = false;
          }
        }
        return { type: 'release', result: kept, timings };
      }
    }
  }
}

const worker = new InferenceWorker();

port.on('message', (msg: WorkerRequest) => {
  worker.enqueue(msg).then(
    (answer) => {
      const { transfer, ...reply } = answer;
      port.postMessage({ id: msg.id, ok: true, ...reply } satisfies WorkerReply, transfer ?? []);
      if (answer.type === 'release' && msg.type === 'release' && msg.last === true && answer.result !== true)
        port.close();
    },
    (error: unknown) => {
      // What is not one of ours is an inference failure, with what onnxruntime said as its cause.
      const e = error instanceof HotocrError ? error : new InferenceError(messageOf(error), { cause: error });
      port.postMessage({ id: msg.id, ok: false, error: serializeError(e) } satisfies WorkerReply);
    },
  );
});
