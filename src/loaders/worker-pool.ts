import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import {
  HotocrError,
  InferenceError,
  isErrorCode,
  messageOf,
  PackageRejectedError,
  REJECTION_CODES,
  type RejectionCode,
} from '../errors.js';
import {
  assembleLines,
  type OcrParams,
  type OcrResult,
  type OcrTimings,
  paramsFromManifest,
  planRecognition,
  type Quad,
  type RecognizedText,
  type RgbImage,
} from '../ocr/index.js';
import { startThread } from '../threads.js';
import type { LoaderPackage, ReadOptions } from './contract.js';
import { OptimizedGraphs } from './graph-cache.js';
import type { BuiltinRuntime, GraphRole, Graphs, WorkerReply, WorkerRequest } from './ocr-worker.js';
import type { SessionOptions } from './ort-session.js';

export interface PoolOptions extends SessionOptions {
  /** Which runtime opens the graphs (default onnxruntime-node). */
  readonly runtime?: BuiltinRuntime;
  /**
   * Inference threads, each with its own sessions (memory grows with each). Default: one per
   * core (at most 4), each onnxruntime single-threaded: on 2 cores that reads a page as fast
   * as one thread using both cores, and a third more pages per second under load
   * (bench/ocr-threads).
   */
  readonly workers?: number;
  /**
   * Load and warm up at this nice value, then return to normal priority in `ready()`. Applied
   * only where each thread runs its graphs itself (one intra-op thread): threads onnxruntime
   * would start for a session could not be given their priority back.
   */
  readonly loadNice?: number;
  /** Keep the threads for the next pool of this runtime once released (default true); false stops them. */
  readonly keepThreads?: boolean;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new HotocrError('REQUEST_ABORTED', 'The client went away; the read was stopped.');
}

/** A request without its id (distributes over the union). */
type Request = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/**
 * A version's load message but for its engine, with its graphs in the optimized form kept in
 * shared memory: it loads the version on any thread, as often as needed.
 */
type Recipe = Omit<Extract<Request, { type: 'load' }>, 'engine'>;

interface Pending {
  resolve(reply: { result: unknown; timings: OcrTimings }): void;
  reject(error: Error): void;
}

/**
 * What a thread is sent of the graphs. Verified bytes: a copy of its own, moved to it (not
 * cloned: a structured clone held the main thread about 67 ms per swap), which it hands to
 * onnxruntime and frees at once (a thread serves one version after another, and a copy left
 * for its collector to find held about 230 MiB more over 120 swaps). A buffer in `movable`
 * that holds its bytes alone is moved itself rather than copied (and emptied here): the last
 * thread's share, when the caller reads the bytes no more. Optimized graphs, in shared
 * memory, are sent as they are: no copy here.
 */
function copyFor(
  graphs: Graphs,
  movable: ReadonlySet<Uint8Array>,
): { graphs: Graphs; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const own = (bytes: Uint8Array): Uint8Array => {
    if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
    const whole =
      bytes.buffer instanceof ArrayBuffer &&
      bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength;
    const sent = movable.has(bytes) && whole ? bytes : new Uint8Array(bytes);
    // Distinct buffers: every copy is new, and a buffer is moved once at most.
    transfer.push(sent.buffer as ArrayBuffer);
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

const ROLES = ['det', 'rec', 'cls'] as const satisfies readonly GraphRole[];

/**
 * Loaded versions whose sessions are open under keys, and not released: a version whose
 * graphs are all open in one of them (a configuration change, a rollback to the same graphs)
 * is loaded on its threads and shares its sessions.
 */
const live = new Set<OcrWorkerPool>();
let nextEngine = 0;

/**
 * onnxruntime-node's optimized graphs, kept across versions in memory shared with the
 * inference threads: a version whose graphs were seen before (a configuration change, a
 * rollback, a new recognizer beside the same detector) opens them without optimizing them
 * again, and the main thread copies none of them. At most 128 MiB: PP-OCRv4's three graphs
 * take 16 MiB.
 */
const optimizedGraphs = new OptimizedGraphs(128 * 1024 * 1024);

/**
 * Whether the graph whose verified bytes have this digest is kept optimized: a version of
 * onnxruntime-node with it loads without its bytes (`ModelLoader.holds`).
 */
export function holdsOptimizedGraph(sha256: string): boolean {
  return optimizedGraphs.has(sha256);
}

/** How often a version's graphs were found optimized already (tests, benchmarks). */
export function optimizedGraphStats(): ReturnType<OptimizedGraphs['stats']> {
  return optimizedGraphs.stats();
}

/**
 * Graphs a loading version found open on the threads of a version already loaded (the same
 * verified digest, runtime and options) and shared rather than opened again.
 */
let sessionsShared = 0;

/** How many graphs loading versions shared with loaded ones (tests, benchmarks, metrics). */
export function sharedGraphSessions(): number {
  return sessionsShared;
}

/** Inference threads that died (an uncaught error on the thread, or its exit) rather than being stopped. */
let threadsLost = 0;

/** How many inference threads died rather than being stopped (metrics, tests). */
export function lostInferenceThreads(): number {
  return threadsLost;
}

/** Threads started in place of one that died, with every version it held loaded again. */
let threadsReplaced = 0;

/** How many inference threads were replaced after one died (metrics, tests). */
export function replacedInferenceThreads(): number {
  return threadsReplaced;
}

/** What became of an inference thread that died: lost (and why), then replaced or not. */
export type InferenceThreadEvent =
  | { readonly type: 'lost'; readonly error: Error }
  | { readonly type: 'replaced'; readonly versions: number }
  | { readonly type: 'not-replaced'; readonly reason: string };

const threadListeners = new Set<(event: InferenceThreadEvent) => void>();

/** Calls `listener` whenever an inference thread dies and is replaced, or not (the server logs these); returns the unsubscribe function. */
export function onInferenceThreads(listener: (event: InferenceThreadEvent) => void): () => void {
  threadListeners.add(listener);
  return () => threadListeners.delete(listener);
}

function tell(event: InferenceThreadEvent): void {
  for (const listener of threadListeners) {
    try {
      listener(event);
    } catch {
      // a listener's failure is its own
    }
  }
}

/** Threads that died, while a new one is loaded in their place. */
const replacing = new Map<InferenceThread, Promise<void>>();

/** Runtimes that have opened sessions in this process (and so started their process-wide threads). */
const opened = new Set<BuiltinRuntime>();

/** Copies into a fresh, transferable buffer: Node's pooled Buffers must not be detached. */
function transferable(image: RgbImage): RgbImage {
  return { data: new Uint8Array(image.data), width: image.width, height: image.height };
}

function toError(error: { code: string; message: string }): Error {
  if ((REJECTION_CODES as readonly string[]).includes(error.code)) {
    return new PackageRejectedError(error.code as RejectionCode, error.message);
  }
  return error.code !== 'INFERENCE_FAILED' && isErrorCode(error.code)
    ? new HotocrError(error.code, error.message)
    : new InferenceError(error.message);
}

/**
 * Threads of released versions, by runtime, kept to load the next version: their compiled
 * JavaScript (the pipeline's pre- and post-processing) is fast already, where a new
 * thread's first page takes 3.8x as long outside the graphs as its fourth (bench/first-pages).
 */
const idle = new Map<BuiltinRuntime, InferenceThread[]>();
/** Most threads kept per runtime: one pool's worth on a machine of up to 4 cores. */
const IDLE_KEPT = 4;

/** A kept thread of this runtime, or a new one. */
function threadFor(runtime: BuiltinRuntime): InferenceThread {
  const kept = idle.get(runtime) ?? [];
  for (let t = kept.pop(); t; t = kept.pop()) if (t.wake()) return t;
  return new InferenceThread();
}

/** A task that was on an inference thread when it died, or sent to one that had. */
class ThreadLostError extends InferenceError {}

class InferenceThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #dead: Error | undefined;
  /** Set when this process stops the thread itself: its exit is then no loss. */
  #stopping = false;
  /** Versions (pools) loaded on this thread. */
  users = 0;

  constructor() {
    this.#worker = startThread(new URL('./ocr-worker.js', import.meta.url));
    this.#worker.on('message', (reply: WorkerReply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if (reply.ok) p.resolve({ result: reply.result, timings: reply.timings });
      else p.reject(toError(reply.error));
    });
    const fail = (error: Error) => {
      const lost = this.#dead === undefined && !this.#stopping;
      this.#dead ??= error;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
      if (lost) {
        threadsLost++;
        tell({ type: 'lost', error });
        OcrWorkerPool.replace(this);
      }
    };
    this.#worker.on('error', (e) =>
      fail(new ThreadLostError(`An inference thread crashed: ${e.message}`, { cause: e })),
    );
    this.#worker.on('exit', (code) =>
      fail(new ThreadLostError(`An inference thread exited (code ${code}).`)),
    );
  }

  /** Tasks sent and not answered yet: how busy this thread is. */
  get load(): number {
    return this.#pending.size;
  }

  send(request: Request, transfer: ArrayBuffer[] = []): Promise<{ result: unknown; timings: OcrTimings }> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id }, transfer);
    });
  }

  get alive(): boolean {
    return this.#dead === undefined;
  }

  /** Why the thread stopped, once it has. */
  get death(): Error | undefined {
    return this.#dead;
  }

  /**
   * Frees a version's engine on this thread (and the sessions no other version here holds).
   * Once no version is left: keeps the thread for the next pool of `runtime` (not holding the
   * process open) when it is healthy and fewer than IDLE_KEPT are kept; else stops it.
   */
  async drop(engine: number, runtime: BuiltinRuntime | undefined): Promise<void> {
    if (--this.users > 0) {
      // Another version still reads here: a thread that died is stopped by the last to leave.
      await this.send({ type: 'release', engine }).catch(() => {});
      return;
    }
    const kept =
      this.#dead || runtime === undefined
        ? false
        : await this.send({ type: 'release', engine, last: true, keep: true }).then(
            (reply) => reply.result === true,
            () => false,
          );
    const spare = (runtime && idle.get(runtime)) || [];
    if (runtime && kept && !this.#dead && spare.length < IDLE_KEPT) {
      this.#worker.unref();
      spare.push(this);
      idle.set(runtime, spare);
      return;
    }
    await this.stop();
  }

  /** Stops the thread, whatever it holds. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#worker.terminate();
  }

  /** Takes a kept thread back into use; false when it has died meanwhile. */
  wake(): boolean {
    if (this.#dead) return false;
    this.#worker.ref();
    return true;
  }
}

/**
 * A loaded OCR model served by a pool of inference threads, each with its own sessions
 * made from the package's verified bytes. A page's detection runs on the least busy thread
 * and its recognition batches are spread over all of them, so the main thread stays free
 * and one page uses both cores of a small machine.
 */
/** How many sessions a thread's load reply says it shared (0 when it does not say). */
function sharedIn(result: unknown): number {
  const n = (result as { shared?: unknown } | undefined)?.shared;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0;
}

export class OcrWorkerPool {
  readonly #threads: InferenceThread[];
  /** Where released threads go: kept for this runtime's next pool, or nowhere (stopped). */
  readonly #keepAs: BuiltinRuntime | undefined;
  readonly #params: OcrParams;
  /** This version's engine on each of its threads. */
  readonly #engine = nextEngine++;
  /** The keys its sessions are open under (every graph's), or none when a graph had no digest. */
  readonly #keys: ReadonlySet<string> | undefined;
  /**
   * What loads this version on a new thread in place of one that died; none where its graphs
   * are not all kept optimized.
   */
  #recipe: Recipe | undefined;
  #released: Promise<void> | undefined;
  /** Sessions opened by another version and shared by this one (all of them, or none). */
  #shared = 0;

  private constructor(
    threads: InferenceThread[],
    keepAs: BuiltinRuntime | undefined,
    params: OcrParams,
    keys: ReadonlySet<string> | undefined,
  ) {
    this.#threads = threads;
    this.#keepAs = keepAs;
    this.#params = params;
    this.#keys = keys;
    for (const t of threads) t.users++;
  }

  /**
   * A loaded version whose threads hold every one of `keys` open, to load another version on
   * (taken now, before anything else can release it); none when no version does.
   */
  static #shareWith(keys: ReadonlySet<string>, count: number): OcrWorkerPool | undefined {
    for (const pool of live)
      if (
        pool.#threads.length === count &&
        pool.#threads.every((t) => t.alive) &&
        [...keys].every((k) => pool.#keys?.has(k))
      )
        return pool;
    return undefined;
  }

  /**
   * Starts a thread in place of `dead`, which died, and loads on it every version that read
   * there, from its recipe (the first opens the sessions, the others share them); meanwhile
   * they read on the threads left, or wait for this when none is. Nothing is replaced when a
   * version has no recipe (its graphs were not all kept optimized), or when a load fails.
   */
  static replace(dead: InferenceThread): void {
    // Called by the thread that died (a pool's private fields are reachable only from here).
    const pools = [...live].filter((p) => p.#threads.includes(dead));
    if (pools.length === 0 || pools.some((p) => p.#recipe === undefined)) {
      // A kept thread that held no version needs no replacing, and no word.
      if (dead.users > 0)
        tell({
          type: 'not-replaced',
          reason:
            'a version on it cannot be loaded again (onnxruntime-wasm, loaded without digests, or being released); its versions read on the threads left',
        });
      return;
    }
    const done = (async () => {
      const fresh = threadFor(pools[0]!.#recipe!.runtime);
      try {
        for (const p of pools) await fresh.send({ ...p.#recipe!, engine: p.#engine });
      } catch (error) {
        await fresh.stop();
        tell({
          type: 'not-replaced',
          reason: `loading its versions on a new thread failed: ${messageOf(error)}`,
        });
        return;
      }
      fresh.users = pools.length;
      threadsReplaced++;
      tell({ type: 'replaced', versions: pools.length });
      for (const p of pools) {
        // Versions sharing threads share the array: the first swap serves them all.
        const i = p.#threads.indexOf(dead);
        if (p.#released === undefined) {
          if (i >= 0) p.#threads[i] = fresh;
        } else await fresh.drop(p.#engine, p.#keepAs);
      }
    })().finally(() => replacing.delete(dead));
    replacing.set(dead, done);
  }

  /**
   * Starts the threads and loads the package's graphs in each; throws GRAPH_INVALID or
   * GRAPH_INCOMPATIBLE (and stops every thread) when a graph does not open or fit its role.
   */
  static async create(pkg: LoaderPackage, options: PoolOptions = {}): Promise<OcrWorkerPool> {
    const m = pkg.manifest;
    /** The graphs this version has. */
    const present = ROLES.filter((r) => m.graphs[r] !== undefined);
    /** Their verified bytes, where kept: a graph held optimized may come without them (`holds`). */
    const graphs: Partial<Graphs> = {};
    for (const role of present) {
      const bytes = pkg.files.get(m.graphs[role]!);
      if (bytes) graphs[role] = bytes;
    }
    const dictBytes = m.dict === undefined ? undefined : pkg.files.get(m.dict);
    if (!dictBytes)
      throw new PackageRejectedError(
        'GRAPH_INVALID',
        `${m.dict ?? 'The dictionary'} was not kept when the package was verified (keepBytes).`,
      );
    const dictionary = Buffer.from(dictBytes).toString('utf8');
    const params = paramsFromManifest(m);
    const count = Math.max(1, options.workers ?? Math.min(availableParallelism(), 4));
    const session: SessionOptions = {
      intraOpThreads: options.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / count)),
      ...(options.spinning !== undefined ? { spinning: options.spinning } : {}),
      ...(options.cpuMemArena !== undefined ? { cpuMemArena: options.cpuMemArena } : {}),
    };
    const runtime = options.runtime ?? 'onnxruntime-node';
    // Lowered only where every thread the load starts is one of ours: with more than one
    // intra-op thread onnxruntime starts its own, and its first session in the process starts
    // a process-wide thread; either would keep the low priority for good.
    const nice =
      options.loadNice !== undefined &&
      options.loadNice > 0 &&
      (session.intraOpThreads === 1 || runtime === 'onnxruntime-wasm') &&
      opened.has(runtime)
        ? { nice: options.loadNice }
        : {};
    const keepAs = options.keepThreads === false ? undefined : runtime;
    // Each graph's session key: its verified digest, with what it is opened by and how. Only
    // when every graph has one, so that a version either shares all its sessions or none.
    const keys: Partial<Record<GraphRole, string>> = {};
    for (const role of ROLES) {
      const name = m.graphs[role];
      const digest = name === undefined ? undefined : pkg.digests?.get(name);
      if (digest !== undefined) keys[role] = `${runtime} ${JSON.stringify(session)} ${digest}`;
    }
    const keyed = present.every((r) => keys[r] !== undefined);
    const keySet = keyed ? new Set(Object.values(keys)) : undefined;
    const donor = keySet && OcrWorkerPool.#shareWith(keySet, count);
    if (donor) {
      // Every graph is open on a loaded version's threads: this version is one more engine on
      // them, sharing its sessions (no graph is sent or opened, and no thread started), for
      // the probes and the warm-up to check its dictionary and parameters. Its threads serve,
      // so it loads at their priority.
      const pool = new OcrWorkerPool(donor.#threads, keepAs, params, keySet);
      try {
        await Promise.all(
          donor.#threads.map((t) =>
            t.send({
              type: 'load',
              engine: pool.#engine,
              graphs: {},
              keys,
              dictionary,
              params,
              runtime,
              session,
            }),
          ),
        );
      } catch (error) {
        await pool.release();
        throw error;
      }
      sessionsShared += keySet.size;
      pool.#shared = keySet.size;
      if (donor.#recipe) pool.#recipe = { ...donor.#recipe, keys, dictionary, params };
      live.add(pool);
      return pool;
    }
    // Graphs this process optimized before, by the digest the caller verified them with.
    const digests = runtime === 'onnxruntime-node' ? pkg.digests : undefined;
    const optimized: Partial<Record<GraphRole, Uint8Array>> = {};
    const unseen: GraphRole[] = [];
    for (const role of present) {
      const digest = digests?.get(m.graphs[role]!);
      if (digest === undefined) continue;
      const kept = optimizedGraphs.get(digest);
      if (kept) optimized[role] = kept;
      else unseen.push(role);
    }
    const missing = present.find((r) => optimized[r] === undefined && graphs[r] === undefined);
    if (missing)
      throw new PackageRejectedError(
        'GRAPH_INVALID',
        `${m.graphs[missing]} was not kept when the package was verified (keepBytes), and no optimized form of it is held.`,
      );
    const threads = Array.from({ length: count }, () => threadFor(runtime));
    const pool = new OcrWorkerPool(threads, keepAs, params, keySet);
    /**
     * Loads thread `i`: graphs optimized before as they are, the others from the verified
     * bytes, of which those in `movable` are moved to it rather than copied.
     */
    const load = (i: number, save: GraphRole[], movable: ReadonlySet<Uint8Array>) => {
      const roles = ROLES.filter((r) => optimized[r] !== undefined);
      // Every graph present is in one or the other (checked above).
      const own = copyFor({ ...graphs, ...optimized } as Graphs, movable);
      return threads[i]!.send(
        {
          type: 'load',
          engine: pool.#engine,
          graphs: own.graphs,
          ...(keySet ? { keys } : {}),
          ...(roles.length > 0 ? { optimized: roles } : {}),
          ...(save.length > 0 ? { save } : {}),
          dictionary,
          params,
          runtime,
          session,
          ...nice,
        },
        own.transfer,
      );
    };
    /** Per thread, the sessions it took as another version there had opened them. */
    const sharedOn: number[] = [];
    /** The verified bytes of the graphs not (yet) optimized. */
    const verified = () =>
      present.flatMap((r) => (optimized[r] === undefined && graphs[r] ? [graphs[r]] : []));
    try {
      let next = 0;
      /** Bytes this pool may move: the caller's, when it reads them no more, or those sent back to it. */
      const ours = new Set<Uint8Array>(pkg.filesMovable === true ? verified() : []);
      if (unseen.length > 0) {
        // One thread optimizes the graphs not seen before and sends them back; the others
        // (and later versions) then open them without optimizing them again. It takes the
        // verified bytes themselves where it may, and sends back those it could not optimize.
        const first =
          threads.length === 1
            ? ours
            : new Set(unseen.flatMap((r) => (ours.has(graphs[r]!) ? [graphs[r]!] : [])));
        const reply = await load(next++, unseen, first);
        const { optimized: saved = {}, unsaved = {} } = (reply.result ?? {}) as {
          optimized?: Partial<Record<GraphRole, Uint8Array>>;
          unsaved?: Partial<Record<GraphRole, Uint8Array>>;
        };
        sharedOn.push(sharedIn(reply.result));
        for (const role of unseen) {
          const bytes = saved[role];
          if (bytes) {
            optimized[role] = bytes;
            optimizedGraphs.set(digests!.get(m.graphs[role]!)!, bytes);
          } else if (unsaved[role]) {
            graphs[role] = unsaved[role];
            ours.add(unsaved[role]);
          }
        }
      }
      // Copies are made before the originals move: the last thread is sent its share last.
      const rest: Promise<{ result?: unknown }>[] = [];
      for (; next < threads.length; next++)
        rest.push(
          load(
            next,
            [],
            next === threads.length - 1 ? new Set(verified().filter((b) => ours.has(b))) : new Set(),
          ),
        );
      for (const reply of await Promise.all(rest)) sharedOn.push(sharedIn(reply.result));
    } catch (error) {
      await pool.release();
      throw error;
    }
    // A session is this version's own unless every thread took it from another version there.
    pool.#shared = Math.min(...sharedOn);
    opened.add(runtime);
    if (keySet) {
      if (present.every((r) => optimized[r] !== undefined))
        pool.#recipe = {
          type: 'load',
          graphs: Object.fromEntries(present.map((r) => [r, optimized[r]!])),
          keys,
          optimized: present,
          dictionary,
          params,
          runtime,
          session,
        };
      live.add(pool);
    }
    return pool;
  }

  /** Gives every thread back the priority it had before loading; called once warm-up has passed. */
  async ready(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.send({ type: 'serve' })));
  }

  get params(): OcrParams {
    return this.#params;
  }

  /**
   * Why this version can read nothing any more: every thread it reads on has stopped, and
   * none is being replaced. Undefined while it can read.
   */
  /** Graph sessions this version shares with the version that opened them (see ServedModel). */
  sharedSessions(): number {
    return this.#shared;
  }

  fault(): string | undefined {
    if (this.#threads.some((t) => t.alive || replacing.has(t))) return undefined;
    return `Every inference thread of this version has stopped (${this.#threads[0]!.death?.message}); load a version again or roll back.`;
  }

  /** The living thread with the fewest tasks waiting; INFERENCE_FAILED once none is left. */
  #leastBusy(): InferenceThread {
    let best: InferenceThread | undefined;
    for (const t of this.#threads) if (t.alive && (best === undefined || t.load < best.load)) best = t;
    if (best) return best;
    const cause = this.#threads[0]!.death;
    const fault = this.fault();
    // Threads are being replaced: the read starts again, and waits for them.
    if (fault === undefined)
      throw new ThreadLostError('Every inference thread is being replaced.', { cause });
    throw new InferenceError(fault, { cause });
  }

  /**
   * Reads every line of text in the image, in reading order. An aborted `signal` stops the
   * work at the next stage boundary (a stage already running on a thread finishes first) and
   * rejects with REQUEST_ABORTED.
   */
  async read(image: RgbImage, options: ReadOptions = {}): Promise<OcrResult> {
    if (this.#released) throw new InferenceError('This model has been released.');
    for (;;) {
      // With no thread alive, wait for those being replaced (none: #leastBusy fails the read).
      if (!this.#threads.some((t) => t.alive)) await Promise.all(this.#threads.map((t) => replacing.get(t)));
      try {
        return await this.#readOnce(image, options);
      } catch (error) {
        // A thread died under this read: read again on the threads left (the graphs' work has
        // no side effects), or on those that replace it.
        if (!(error instanceof ThreadLostError)) throw error;
      }
    }
  }

  async #readOnce(image: RgbImage, options: ReadOptions): Promise<OcrResult> {
    checkAborted(options.signal);
    const start = performance.now();
    // A copy is sent: `image` stays whole for a read again.
    const img = transferable(image);
    const located = await this.#leastBusy().send({ type: 'locate', engine: this.#engine, image: img }, [
      img.data.buffer as ArrayBuffer,
    ]);
    const { boxes, crops } = located.result as { boxes: Quad[]; crops: RgbImage[] };
    checkAborted(options.signal);
    const timings: OcrTimings = { ...located.timings, rec: 0, total: 0 };
    const recStart = performance.now();
    const texts: RecognizedText[] = new Array(crops.length);
    const perThread = new Map<InferenceThread, number>();
    await Promise.all(
      planRecognition(crops, this.#params).map(async (batch) => {
        const thread = this.#leastBusy();
        const batchCrops = batch.map((i) => crops[i]!);
        const reply = await thread.send(
          { type: 'recognize', engine: this.#engine, crops: batchCrops },
          batchCrops.map((c) => c.data.buffer as ArrayBuffer),
        );
        (reply.result as RecognizedText[]).forEach((r, k) => {
          texts[batch[k]!] = r;
        });
        perThread.set(thread, (perThread.get(thread) ?? 0) + reply.timings.inference);
      }),
    );
    timings.rec = performance.now() - recStart;
    // Batches run in parallel: the time inside run() is the busiest thread's.
    timings.inference += Math.max(0, ...perThread.values());
    timings.total = performance.now() - start;
    return { lines: assembleLines(boxes, texts, this.#params.rec.dropScore), timings };
  }

  /**
   * Releases this version's engine on every thread, and the sessions no other version shares;
   * a thread no version uses any more is kept for the next version of this runtime (up to
   * IDLE_KEPT) or stopped. Safe to call twice.
   */
  release(): Promise<void> {
    // Out of `live` at once: a version loading from now on does not count on these sessions.
    live.delete(this);
    this.#released ??= Promise.all(this.#threads.map((t) => t.drop(this.#engine, this.#keepAs))).then(
      () => {},
    );
    return this.#released;
  }
}
