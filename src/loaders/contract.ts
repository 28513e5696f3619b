/**
 * The loader contract: everything the registry and the server know about how a verified
 * package becomes a model that reads images. Built-in loaders and plugins implement it alike.
 */
import type { OcrResult, RgbImage } from '../ocr/index.js';
import type { Manifest } from '../package/index.js';

/**
 * What a loader is given: the manifest and the verified bytes of the package's files, held
 * in memory since verification. Never a path: a file on disk could change after it was checked.
 */
export interface LoaderPackage {
  readonly manifest: Manifest;
  /** SHA-256 of the whole package, hex. */
  readonly sha256: string;
  /**
   * Every file of the package by entry name, as verified; from the server, less the graphs
   * this loader said it holds ({@link ModelLoader.holds}).
   */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /**
   * Set when the caller reads none of `files` once `load` has returned (the server does
   * not): the loader may move the buffers to another thread, which empties them here,
   * instead of copying them.
   */
  readonly filesMovable?: boolean;
  /**
   * SHA-256 (hex) of each file by entry name, set only when each was computed from the very
   * bytes in `files` (the server's verifier does so): a loader may then reuse what it made
   * before from bytes of the same digest, such as an optimized graph or an open session.
   */
  readonly digests?: ReadonlyMap<string, string>;
}

/** Settings the server passes to every loader; a loader uses those that apply to it. */
export interface LoadOptions {
  /** Inference threads (built-in loaders: default one per core, at most 4). */
  readonly workers?: number;
  /** Threads one graph run may use (native runtime). */
  readonly intraOpThreads?: number;
  /** onnxruntime's CPU memory arena (default on). */
  readonly cpuMemArena?: boolean;
  /** Let idle runtime threads spin-wait (default off). */
  readonly spinning?: boolean;
  /**
   * Set when another version already serves: load and warm up at this nice value (a lower
   * scheduling priority) so serving keeps the cores, and return to normal priority in
   * `ready()`. Only set when the process may raise a priority again. Loaders may ignore it.
   */
  readonly loadNice?: number;
  /**
   * Keep the model's threads, once it is released, for the next model to load on (default
   * true): their compiled JavaScript is already fast. Loaders may ignore it.
   */
  readonly keepThreads?: boolean;
}

export interface ReadOptions {
  /** Aborting asks the model to stop at its next chance; it then rejects. */
  readonly signal?: AbortSignal;
}

/** A model made by a loader: reads images until it is released. */
export interface LoadedModel {
  /** Every line of text in the image, in reading order. Safe to call concurrently. */
  read(image: RgbImage, options?: ReadOptions): Promise<OcrResult>;
  /**
   * Optional: called once warm-up has passed, before the model takes its first request: a
   * model that loaded at a lower priority takes its normal one back here. A throw fails the
   * version (LOAD_FAILED).
   */
  ready?(): Promise<void>;
  /**
   * Optional: why the model can read nothing any more (every thread it read on has stopped,
   * and none is being started in their place), or undefined while it can. `/readyz` answers
   * 503 while the active version's model gives a reason, so that traffic goes elsewhere.
   */
  fault?(): string | undefined;
  /**
   * Optional: how many of the model's graph sessions another loaded model opened and this one
   * shares (the same graph bytes, runtime and options), so their memory is counted once, with
   * that model. 0 or absent: every session is its own.
   */
  sharedSessions?(): number;
  /** Frees everything the model holds. Called once, after the last read has finished. */
  release(): Promise<void>;
}

/** Facts about how a loader runs a package, for people: shown in the model list. */
export type LoaderMetadata = Readonly<Record<string, string | number | boolean>>;

/**
 * Hides a model format and runtime behind three calls. A plugin is an ES module whose
 * default export is a `ModelLoader` (or a function, possibly async, that returns one).
 */
export interface ModelLoader {
  /** A short lowercase name, shown in logs and the model list (e.g. `onnxruntime-node`). */
  readonly name: string;
  /**
   * Whether this loader runs the package. `manifest.runtime` is always set here: the
   * package's own, or the server's default (`--runtime`) when the package names none.
   */
  supports(manifest: Manifest): boolean;
  /** Makes a model from verified bytes; throws (and leaves nothing running) when it cannot. */
  load(pkg: LoaderPackage, options: LoadOptions): Promise<LoadedModel>;
  /** Describes how this loader runs the package: runtime, its version, backend... */
  metadata(manifest: Manifest): LoaderMetadata;
  /**
   * Optional: whether this loader can load the graph whose verified bytes have this SHA-256,
   * for this manifest, without those bytes, from what it kept of them (onnxruntime-node: the
   * graph as it optimized it). The server then does not keep them while verifying the
   * package, and they are missing from `files` (`digests` still lists them). The server loads
   * one package at a time: what a loader holds when asked, it must still hold at `load`.
   */
  holds?(manifest: Manifest, sha256: string): boolean;
}

/** A model as the registry holds it: with the loader that made it and what that loader said. */
export interface ServedModel extends LoadedModel {
  readonly loader: string;
  readonly metadata: LoaderMetadata;
}
