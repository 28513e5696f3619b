import { availableParallelism } from 'node:os';
import { HotocrError, InferenceError, PackageRejectedError } from '../errors.js';
import {
  assembleLines,
  type OcrParams,
  type OcrResult,
  type OcrTimings,
  paramsFromManifest,
  planRecognition,
  type RecognizedText,
  type RgbImage,
} from '../ocr/index.js';
import type { LoaderPackage, ReadOptions } from './contract.js';
import type { BuiltinRuntime, GraphRole, Graphs, LoadResult, RequestOf } from './inference-protocol.js';
import { type InferenceThread, ThreadLostError } from './inference-thread.js';
import type { InferenceThreads } from './inference-threads.js';
import { movableBy, movableByFirst, planGraphs, planSessions, unoptimized } from './load-plan.js';
import type { SessionOptions } from './ort-session.js';
import { bufferOf, copyFor, transferable } from './transfer.js';

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

/**
 * A version's load message but for its engine, with its graphs in the optimized form kept in
 * shared memory: it loads the version on any thread, as often as needed.
 */
type Recipe = Omit<RequestOf<'load'>, 'engine'>;

/**
 * A loaded OCR model served by a pool of inference threads, each with its own sessions
 * made from the package's verified bytes. A page's detection runs on the least busy thread
 * and its recognition batches are spread over all of them, so the main thread stays free
 * and one page uses both cores of a small machine.
 */
export class OcrWorkerPool {
  readonly #owner: InferenceThreads;
  readonly #threads: InferenceThread[];
  /** Where released threads go: kept for this runtime's next pool, or nowhere (stopped). */
  readonly #keepAs: BuiltinRuntime | undefined;
  readonly #params: OcrParams;
  /** This version's engine on each of its threads. */
  readonly #engine: number;
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
    owner: InferenceThreads,
    threads: InferenceThread[],
    keepAs: BuiltinRuntime | undefined,
    params: OcrParams,
    keys: ReadonlySet<string> | undefined,
  ) {
    this.#owner = owner;
    this.#engine = owner.nextEngine();
    this.#threads = threads;
    this.#keepAs = keepAs;
    this.#params = params;
    this.#keys = keys;
    for (const t of threads) t.users++;
  }

  /** Whether another version with these session keys, on as many threads, can share this one's sessions. */
  canShare(keys: ReadonlySet<string>, count: number): boolean {
    return (
      this.#released === undefined &&
      this.#threads.length === count &&
      this.#threads.every((t) => t.alive) &&
      [...keys].every((k) => this.#keys?.has(k))
    );
  }

  /** Whether this version reads on `thread`. */
  runsOn(thread: InferenceThread): boolean {
    return this.#threads.includes(thread);
  }

  /** The runtime this version can be loaded again with on a new thread; undefined when it cannot be. */
  reloadRuntime(): BuiltinRuntime | undefined {
    return this.#recipe?.runtime;
  }

  /** Loads this version on `thread` (in place of one that died), from its recipe. */
  async loadOn(thread: InferenceThread): Promise<void> {
    if (!this.#recipe) throw new InferenceError('This version cannot be loaded again on a new thread.');
    await thread.send({ ...this.#recipe, engine: this.#engine });
  }

  /** Reads on `fresh` from now on rather than on `dead`; released meanwhile, frees it there. */
  async replaceThread(dead: InferenceThread, fresh: InferenceThread): Promise<void> {
    // Versions sharing threads share the array: the first swap serves them all.
    const i = this.#threads.indexOf(dead);
    if (this.#released === undefined) {
      if (i >= 0) this.#threads[i] = fresh;
    } else await this.#owner.drop(fresh, this.#engine, this.#keepAs);
  }

  /**
   * Starts (or takes kept) threads from `owner` and loads the package's graphs in each;
   * throws GRAPH_INVALID or GRAPH_INCOMPATIBLE (and frees every thread) when a graph does
   * not open or fit its role. Through {@link InferenceThreads.load}.
   */
  static async create(
    owner: InferenceThreads,
    pkg: LoaderPackage,
    options: PoolOptions = {},
  ): Promise<OcrWorkerPool> {
    const m = pkg.manifest;
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
      owner.hasOpened(runtime)
        ? { nice: options.loadNice }
        : {};
    const keepAs = options.keepThreads === false ? undefined : runtime;
    const input = { graphs: m.graphs, files: pkg.files, digests: pkg.digests, runtime, session };
    const { present, keys, keySet, ...sessions } = planSessions(input);
    const donor = keySet && owner.shareWith(keySet, count);
    if (donor) {
      // Every graph is open on a loaded version's threads: this version is one more engine on
      // them, sharing its sessions (no graph is sent or opened, and no thread started), for
      // the probes and the warm-up to check its dictionary and parameters. Its threads serve,
      // so it loads at their priority.
      const pool = new OcrWorkerPool(owner, donor.#threads, keepAs, params, keySet);
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
      owner.countShared(keySet.size);
      pool.#shared = keySet.size;
      if (donor.#recipe) pool.#recipe = { ...donor.#recipe, keys, dictionary, params };
      owner.addLive(pool);
      return pool;
    }
    // Looked up only now: a version sharing sessions opens no graph.
    const plan = planGraphs(input, { present, bytes: sessions.bytes }, (sha256) => owner.optimizedOf(sha256));
    if (plan.missing)
      throw new PackageRejectedError(
        'GRAPH_INVALID',
        `${m.graphs[plan.missing]} was not kept when the package was verified (keepBytes), and no optimized form of it is held.`,
      );
    // Updated as the first thread sends back what it optimized, or the bytes it could not.
    const optimized = { ...plan.optimized };
    const bytes = { ...sessions.bytes };
    const current = { present, optimized, bytes };
    const threads = Array.from({ length: count }, () => owner.thread(runtime));
    const pool = new OcrWorkerPool(owner, threads, keepAs, params, keySet);
    /**
     * Loads thread `i`: graphs optimized before as they are, the others from the verified
     * bytes, of which those in `movable` are moved to it rather than copied.
     */
    const load = (i: number, save: readonly GraphRole[], movable: ReadonlySet<Uint8Array>) => {
      const roles = present.filter((r) => optimized[r] !== undefined);
      const sent: Partial<Graphs> = {};
      for (const r of present) {
        const b = optimized[r] ?? bytes[r];
        if (b) sent[r] = b;
      }
      if (!sent.rec) throw new PackageRejectedError('GRAPH_INVALID', 'The package has no recognition graph.');
      const own = copyFor({ ...sent, rec: sent.rec }, movable);
      return threads[i]!.send(
        {
          type: 'load',
          engine: pool.#engine,
          graphs: own.graphs,
          ...(keySet ? { keys } : {}),
          ...(roles.length > 0 ? { optimized: roles } : {}),
          ...(save.length > 0 ? { save: [...save] } : {}),
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
    try {
      let next = 0;
      /** Bytes this pool may move: the caller's, when it reads them no more, or those sent back to it. */
      const ours = new Set<Uint8Array>(pkg.filesMovable === true ? unoptimized(current) : []);
      if (plan.unseen.length > 0) {
        // One thread optimizes the graphs not seen before and sends them back; the others
        // (and later versions) then open them without optimizing them again. It takes the
        // verified bytes themselves where it may, and sends back those it could not optimize.
        const reply = await load(
          next++,
          plan.unseen,
          movableByFirst(plan.unseen, bytes, ours, threads.length),
        );
        const result: LoadResult = reply.result;
        sharedOn.push(result.shared);
        for (const role of plan.unseen) {
          const saved = result.optimized[role];
          const back = result.unsaved[role];
          if (saved) {
            optimized[role] = saved;
            owner.keepOptimized(pkg.digests!.get(m.graphs[role]!)!, saved);
          } else if (back) {
            bytes[role] = back;
            ours.add(back);
          }
        }
      }
      // Copies are made before the originals move: the last thread is sent its share last.
      const rest: Promise<{ result: LoadResult }>[] = [];
      for (; next < threads.length; next++)
        rest.push(load(next, [], movableBy(next, threads.length, current, ours)));
      for (const reply of await Promise.all(rest)) sharedOn.push(reply.result.shared);
    } catch (error) {
      await pool.release();
      throw error;
    }
    // A session is this version's own unless every thread took it from another version there.
    pool.#shared = Math.min(...sharedOn);
    owner.markOpened(runtime);
    if (keySet) {
      if (present.every((r) => optimized[r] !== undefined))
        pool.#recipe = {
          type: 'load',
          graphs: Object.fromEntries(present.map((r) => [r, optimized[r]!])),
          keys,
          optimized: [...present],
          dictionary,
          params,
          runtime,
          session,
        };
      owner.addLive(pool);
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

  /** Graph sessions this version shares with the version that opened them (see ServedModel). */
  sharedSessions(): number {
    return this.#shared;
  }

  /**
   * Why this version can read nothing any more: every thread it reads on has stopped, and
   * none is being replaced. Undefined while it can read.
   */
  fault(): string | undefined {
    if (this.#threads.some((t) => t.alive || this.#owner.replacement(t) !== undefined)) return undefined;
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
      if (!this.#threads.some((t) => t.alive))
        await Promise.all(this.#threads.map((t) => this.#owner.replacement(t)));
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
      bufferOf(img.data),
    ]);
    const found = located.result;
    const { crops } = found;
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
          {
            type: 'recognize',
            engine: this.#engine,
            crops: batchCrops,
            insets: batch.map((i) => found.insets[i]!),
          },
          batchCrops.map((c) => bufferOf(c.data)),
        );
        reply.result.forEach((r, k) => {
          texts[batch[k]!] = r;
        });
        perThread.set(thread, (perThread.get(thread) ?? 0) + reply.timings.inference);
      }),
    );
    timings.rec = performance.now() - recStart;
    // Batches run in parallel: the time inside run() is the busiest thread's.
    timings.inference += Math.max(0, ...perThread.values());
    timings.total = performance.now() - start;
    return { lines: assembleLines(found, texts, this.#params), timings };
  }

  /**
   * Releases this version's engine on every thread, and the sessions no other version shares;
   * a thread no version uses any more is kept for the next version of this runtime or
   * stopped ({@link InferenceThreads.drop}). Safe to call twice.
   */
  release(): Promise<void> {
    // At once: a version loading from now on does not count on these sessions.
    this.#owner.removeLive(this);
    this.#released ??= Promise.all(
      this.#threads.map((t) => this.#owner.drop(t, this.#engine, this.#keepAs)),
    ).then(() => {});
    return this.#released;
  }
}
