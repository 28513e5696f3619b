/**
 * The owner of a process's inference threads: the versions loaded on them, the threads kept
 * idle for the next version, those being replaced after one died, the optimized graphs kept
 * across versions, and the counters and listeners that tell what became of them. The server
 * makes one and hands it to its loaders and its metrics; a tool or a test makes its own.
 */
import { messageOf } from '../errors.js';
import type { LoaderPackage } from './contract.js';
import { OptimizedGraphs } from './graph-cache.js';
import type { BuiltinRuntime } from './inference-protocol.js';
import { InferenceThread } from './inference-thread.js';
import { OcrWorkerPool, type PoolOptions } from './worker-pool.js';

/** What became of an inference thread that died: lost (and why), then replaced or not. */
export type InferenceThreadEvent =
  | { readonly type: 'lost'; readonly error: Error }
  | { readonly type: 'replaced'; readonly versions: number }
  | { readonly type: 'not-replaced'; readonly reason: string };

export interface InferenceThreadsOptions {
  /**
   * Threads of released versions kept per runtime for the next version (default 4: one
   * pool's worth on a machine of up to 4 cores). Their compiled JavaScript (the pipeline's
   * pre- and post-processing) is fast already, where a new thread's first page takes 3.8x as
   * long outside the graphs as its fourth (bench/first-pages).
   */
  readonly idleKept?: number;
  /** Memory for optimized graphs (default 128 MiB: PP-OCRv4's three graphs take 16 MiB). */
  readonly optimizedBytes?: number;
}

export class InferenceThreads {
  /**
   * Loaded versions whose sessions are open under keys, and not released: a version whose
   * graphs are all open in one of them (a configuration change, a rollback to the same
   * graphs) is loaded on its threads and shares its sessions.
   */
  readonly #live = new Set<OcrWorkerPool>();
  #nextEngine = 0;
  /**
   * onnxruntime-node's optimized graphs, kept across versions in memory shared with the
   * inference threads: a version whose graphs were seen before (a configuration change, a
   * rollback, a new recognizer beside the same detector) opens them without optimizing them
   * again, and the main thread copies none of them.
   */
  readonly #optimized: OptimizedGraphs;
  /** Graphs a loading version found open for a loaded one and shared rather than opened again. */
  #sessionsShared = 0;
  /** Threads that died (an uncaught error on the thread, or its exit) rather than being stopped. */
  #lost = 0;
  /** Threads started in place of one that died, with every version it held loaded again. */
  #replaced = 0;
  readonly #listeners = new Set<(event: InferenceThreadEvent) => void>();
  /** Threads that died, while a new one is loaded in their place. */
  readonly #replacing = new Map<InferenceThread, Promise<void>>();
  /** Runtimes that have opened sessions here (and so started their process-wide threads). */
  readonly #opened = new Set<BuiltinRuntime>();
  /** Threads of released versions, by runtime, kept to load the next version. */
  readonly #idle = new Map<BuiltinRuntime, InferenceThread[]>();
  readonly #idleKept: number;

  constructor(options: InferenceThreadsOptions = {}) {
    this.#idleKept = options.idleKept ?? 4;
    this.#optimized = new OptimizedGraphs(options.optimizedBytes ?? 128 * 1024 * 1024);
  }

  /**
   * Starts (or takes kept) threads and loads the package's graphs in each; throws
   * GRAPH_INVALID or GRAPH_INCOMPATIBLE (and frees every thread) when a graph does not open
   * or fit its role.
   */
  load(pkg: LoaderPackage, options: PoolOptions = {}): Promise<OcrWorkerPool> {
    return OcrWorkerPool.create(this, pkg, options);
  }

  /**
   * Whether the graph whose verified bytes have this digest is kept optimized: a version of
   * onnxruntime-node with it loads without its bytes (`ModelLoader.holds`).
   */
  holdsOptimizedGraph(sha256: string): boolean {
    return this.#optimized.has(sha256);
  }

  /** How often a version's graphs were found optimized already (metrics, tests, benchmarks). */
  optimizedGraphStats(): ReturnType<OptimizedGraphs['stats']> {
    return this.#optimized.stats();
  }

  /** How many graphs loading versions shared with loaded ones. */
  sharedGraphSessions(): number {
    return this.#sessionsShared;
  }

  /** How many inference threads died rather than being stopped. */
  lostThreads(): number {
    return this.#lost;
  }

  /** How many inference threads were replaced after one died. */
  replacedThreads(): number {
    return this.#replaced;
  }

  /** Calls `listener` whenever an inference thread dies and is replaced, or not (the server logs these); returns the unsubscribe function. */
  on(listener: (event: InferenceThreadEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops the threads kept idle (those of loaded versions go with their versions' release). */
  async close(): Promise<void> {
    const kept = [...this.#idle.values()].flat();
    this.#idle.clear();
    await Promise.all(kept.map((t) => t.stop()));
  }

  // What the pools of this owner use.

  /** A new engine number: a version's name on every thread it reads on. */
  nextEngine(): number {
    return this.#nextEngine++;
  }

  optimizedOf(sha256: string): Uint8Array | undefined {
    return this.#optimized.get(sha256);
  }

  keepOptimized(sha256: string, bytes: Uint8Array): void {
    this.#optimized.set(sha256, bytes);
  }

  countShared(sessions: number): void {
    this.#sessionsShared += sessions;
  }

  hasOpened(runtime: BuiltinRuntime): boolean {
    return this.#opened.has(runtime);
  }

  markOpened(runtime: BuiltinRuntime): void {
    this.#opened.add(runtime);
  }

  /** A loaded version whose threads hold every one of `keys` open, to load another version on. */
  shareWith(keys: ReadonlySet<string>, count: number): OcrWorkerPool | undefined {
    for (const pool of this.#live) if (pool.canShare(keys, count)) return pool;
    return undefined;
  }

  /** A version whose sessions others may share, and that can be loaded again on a new thread. */
  addLive(pool: OcrWorkerPool): void {
    this.#live.add(pool);
  }

  /** Out at once on release: a version loading from then on does not count on its sessions. */
  removeLive(pool: OcrWorkerPool): void {
    this.#live.delete(pool);
  }

  /** A kept thread of this runtime, or a new one. */
  thread(runtime: BuiltinRuntime): InferenceThread {
    const kept = this.#idle.get(runtime) ?? [];
    for (let t = kept.pop(); t; t = kept.pop()) if (t.wake()) return t;
    return new InferenceThread((dead, error) => this.#lose(dead, error));
  }

  /** While a thread that died is being replaced: the replacement's load. */
  replacement(thread: InferenceThread): Promise<void> | undefined {
    return this.#replacing.get(thread);
  }

  /**
   * Frees a version's engine on a thread (and the sessions no other version there holds).
   * Once no version is left: keeps the thread for the next version of `runtime` (not holding
   * the process open) when it is healthy and fewer than `idleKept` are kept; else stops it.
   */
  async drop(thread: InferenceThread, engine: number, runtime: BuiltinRuntime | undefined): Promise<void> {
    if (--thread.users > 0) {
      // Another version still reads here: a thread that died is stopped by the last to leave.
      await thread.send({ type: 'release', engine }).catch(() => {});
      return;
    }
    const kept =
      !thread.alive || runtime === undefined
        ? false
        : await thread.send({ type: 'release', engine, last: true, keep: true }).then(
            (reply) => reply.result === true,
            () => false,
          );
    const spare = (runtime && this.#idle.get(runtime)) || [];
    if (runtime && kept && thread.alive && spare.length < this.#idleKept) {
      thread.sleep();
      spare.push(thread);
      this.#idle.set(runtime, spare);
      return;
    }
    await thread.stop();
  }

  #tell(event: InferenceThreadEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /**
   * A thread died: its versions go on reading on the threads left, while a new thread is
   * started in its place and every version that read there is loaded on it from its recipe
   * (the first opens the sessions, the others share them). Nothing is replaced when a
   * version has no recipe (its graphs were not all kept optimized), or when a load fails.
   */
  #lose(dead: InferenceThread, error: Error): void {
    this.#lost++;
    this.#tell({ type: 'lost', error });
    const pools = [...this.#live].filter((p) => p.runsOn(dead));
    const runtime = pools[0]?.reloadRuntime();
    if (runtime === undefined || pools.some((p) => p.reloadRuntime() === undefined)) {
      // A kept thread that held no version needs no replacing, and no word.
      if (dead.users > 0)
        this.#tell({
          type: 'not-replaced',
          reason:
            'a version on it cannot be loaded again (onnxruntime-wasm, loaded without digests, or being released); its versions read on the threads left',
        });
      return;
    }
    const done = (async () => {
      const fresh = this.thread(runtime);
      try {
        for (const p of pools) await p.loadOn(fresh);
      } catch (failure) {
        await fresh.stop();
        this.#tell({
          type: 'not-replaced',
          reason: `loading its versions on a new thread failed: ${messageOf(failure)}`,
        });
        return;
      }
      fresh.users = pools.length;
      this.#replaced++;
      this.#tell({ type: 'replaced', versions: pools.length });
      for (const p of pools) await p.replaceThread(dead, fresh);
    })().finally(() => this.#replacing.delete(dead));
    this.#replacing.set(dead, done);
  }
}
