import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { HotocrError, InferenceError, messageOf, PackageRejectedError } from '../errors.js';
import type { OcrResult } from '../ocr/index.js';
import type { Manifest } from '../package/index.js';
import { BUILTIN_NAMES, builtinLoaders, DEFAULT_RUNTIME } from './builtin.js';
import type {
  LoadedModel,
  LoaderMetadata,
  LoaderPackage,
  LoadOptions,
  ModelLoader,
  ServedModel,
} from './contract.js';
import { InferenceThreads } from './inference-threads.js';

export interface LoadersOptions {
  /**
   * Plugin modules (paths, or package names resolved from `cwd`), asked before the built-in
   * loaders, in this order.
   */
  readonly plugins?: readonly string[];
  /** The runtime of packages whose manifest names none (default onnxruntime-node). */
  readonly defaultRuntime?: string;
  /** Passed to every load. */
  readonly loadOptions?: LoadOptions;
  /** Where plugin paths and package names are resolved from (default: the working directory). */
  readonly cwd?: string;
  /** Longest a plugin may take to load a package before the version fails (default 5 minutes). */
  readonly pluginTimeoutMs?: number;
  /**
   * The inference threads the built-in loaders run on. Default: threads of these loaders'
   * own, stopped when the versions on them are released (a server passes the process's).
   */
  readonly threads?: InferenceThreads;
}

/** One loader the server can use, and the module it came from when it is a plugin. */
export interface LoaderEntry {
  readonly loader: ModelLoader;
  /** The plugin's module specifier, as configured; absent for a built-in loader. */
  readonly plugin?: string;
}

const LOADER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function invalid(spec: string, message: string, cause?: unknown): HotocrError {
  return new HotocrError('LOADER_INVALID', `The loader plugin ${spec} ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { plugin: spec },
  });
}

/** Resolves a plugin specifier the way an operator means it: a path from `cwd`, or a package installed there. */
async function importPlugin(spec: string, cwd: string): Promise<unknown> {
  let url: string;
  if (spec.startsWith('file:')) url = spec;
  else if (spec.startsWith('.') || isAbsolute(spec)) url = pathToFileURL(resolve(cwd, spec)).href;
  else {
    try {
      url = pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(spec)).href;
    } catch {
      url = spec; // not installed beside the working directory: let Node look beside hotocr
    }
  }
  try {
    return await import(url);
  } catch (cause) {
    throw invalid(spec, `cannot be imported: ${messageOf(cause)}`, cause);
  }
}

async function pluginLoader(spec: string, cwd: string): Promise<ModelLoader> {
  const mod = (await importPlugin(spec, cwd)) as { default?: unknown; loader?: unknown };
  let exported = mod.default ?? mod.loader;
  if (typeof exported === 'function') {
    try {
      exported = await (exported as () => unknown)();
    } catch (cause) {
      throw invalid(spec, `threw while making its loader: ${messageOf(cause)}`, cause);
    }
  }
  const l = exported as Partial<ModelLoader> | undefined;
  if (!l || typeof l !== 'object')
    throw invalid(
      spec,
      'exports no loader: its default export must be a ModelLoader or a function returning one.',
    );
  if (typeof l.name !== 'string' || !LOADER_NAME.test(l.name))
    throw invalid(
      spec,
      `has no valid name (lowercase letters, digits, ".", "_" or "-"; got ${JSON.stringify(l.name)}).`,
    );
  for (const method of ['supports', 'load', 'metadata'] as const) {
    if (typeof l[method] !== 'function')
      throw invalid(spec, `(loader "${l.name}") has no ${method}() function.`);
  }
  return l as ModelLoader;
}

const point = z.tuple([z.number(), z.number()]);
const resultSchema = z.object({
  lines: z.array(
    z.object({ text: z.string(), score: z.number(), box: z.tuple([point, point, point, point]) }),
  ),
  timings: z
    .object({ det: z.number(), cls: z.number(), rec: z.number(), inference: z.number(), total: z.number() })
    .partial()
    .optional(),
});

function metadataOf(loader: ModelLoader, manifest: Manifest): LoaderMetadata {
  try {
    const raw = loader.metadata(manifest) as Record<string, unknown>;
    const kept = Object.entries(raw ?? {}).filter(
      ([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean',
    );
    return Object.fromEntries(kept) as LoaderMetadata;
  } catch {
    return {};
  }
}

function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  onLate: (value: T) => void,
  message: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new HotocrError('LOAD_FAILED', message));
    }, ms);
  });
  work.then(
    (value) => {
      if (timedOut) onLate(value);
    },
    () => {},
  );
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A plugin's model behind walls: a read that throws becomes INFERENCE_FAILED naming the
 * loader, a result of the wrong shape is refused rather than sent to a client, and a release
 * that throws is ignored (the version is gone either way).
 */
function contained(name: string, model: LoadedModel): LoadedModel {
  return {
    async read(image, options) {
      let raw: unknown;
      try {
        raw = await model.read(image, options);
      } catch (error) {
        if (error instanceof HotocrError) throw error;
        throw new InferenceError(`The loader "${name}" failed to read the image: ${messageOf(error)}`, {
          cause: error,
        });
      }
      const parsed = resultSchema.safeParse(raw);
      if (!parsed.success)
        throw new InferenceError(
          `The loader "${name}" returned a result of the wrong shape: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
        );
      const t = parsed.data.timings ?? {};
      return {
        lines: parsed.data.lines,
        timings: {
          det: t.det ?? 0,
          cls: t.cls ?? 0,
          rec: t.rec ?? 0,
          inference: t.inference ?? 0,
          total: t.total ?? 0,
        },
      } satisfies OcrResult;
    },
    ...(model.ready
      ? {
          async ready() {
            try {
              await model.ready!();
            } catch (cause) {
              throw new HotocrError(
                'LOAD_FAILED',
                `The loader "${name}" failed to make the model ready: ${messageOf(cause)}`,
                { cause },
              );
            }
          },
        }
      : {}),
    ...(model.sharedSessions
      ? {
          sharedSessions() {
            try {
              const n = Number(model.sharedSessions!());
              return Number.isInteger(n) && n > 0 ? n : 0;
            } catch {
              return 0;
            }
          },
        }
      : {}),
    ...(model.fault
      ? {
          fault() {
            try {
              const why: unknown = model.fault!();
              return why ? String(why) : undefined;
            } catch (cause) {
              return `The loader "${name}" could not tell whether the model can read: ${messageOf(cause)}`;
            }
          },
        }
      : {}),
    async release() {
      try {
        await model.release();
      } catch {
        // nothing more can be done for a model on its way out
      }
    },
  };
}

/**
 * The loaders a server uses: its plugins first, in configured order, then the built-in
 * onnxruntime loaders. The first whose `supports()` says yes loads a package; a package no
 * loader supports is refused with LOADER_NOT_FOUND. The registry and the server know only this.
 */
export class Loaders {
  readonly #entries: readonly LoaderEntry[];
  readonly #defaultRuntime: string;
  readonly #loadOptions: LoadOptions;
  readonly #pluginTimeoutMs: number;
  readonly #threads: InferenceThreads;

  private constructor(entries: LoaderEntry[], options: LoadersOptions & { threads: InferenceThreads }) {
    this.#entries = entries;
    this.#threads = options.threads;
    this.#defaultRuntime = options.defaultRuntime ?? DEFAULT_RUNTIME;
    this.#loadOptions = options.loadOptions ?? {};
    this.#pluginTimeoutMs = options.pluginTimeoutMs ?? 300_000;
  }

  /** The built-in loaders alone. */
  static builtin(options: Omit<LoadersOptions, 'plugins' | 'cwd'> = {}): Loaders {
    // Threads of their own, stopped with each version released: nothing is left idle in an
    // owner no one else can reach.
    const threads = options.threads ?? new InferenceThreads({ idleKept: 0 });
    return new Loaders(
      builtinLoaders(threads).map((loader) => ({ loader })),
      { ...options, threads },
    );
  }

  /** Imports every plugin and checks it has the contract's shape; throws LOADER_INVALID otherwise. */
  static async create(options: LoadersOptions = {}): Promise<Loaders> {
    const cwd = options.cwd ?? process.cwd();
    const entries: LoaderEntry[] = [];
    const names = new Set(BUILTIN_NAMES);
    for (const spec of options.plugins ?? []) {
      const loader = await pluginLoader(spec, cwd);
      if (names.has(loader.name))
        throw invalid(
          spec,
          `is named "${loader.name}", which another loader already has; loader names are unique.`,
        );
      names.add(loader.name);
      entries.push({ loader, plugin: spec });
    }
    const threads = options.threads ?? new InferenceThreads({ idleKept: 0 });
    entries.push(...builtinLoaders(threads).map((loader) => ({ loader })));
    return new Loaders(entries, { ...options, threads });
  }

  /** The inference threads the built-in loaders run on. */
  get threads(): InferenceThreads {
    return this.#threads;
  }

  /** Every loader, in the order they are asked. */
  get entries(): readonly LoaderEntry[] {
    return this.#entries;
  }

  get defaultRuntime(): string {
    return this.#defaultRuntime;
  }

  /**
   * Whether the server keeps an entry's bytes when it verifies a package: every entry's but
   * the graphs that the loader running the manifest holds already ({@link ModelLoader.holds}).
   * When no loader runs it, or the loader fails to answer, the bytes are kept.
   */
  keeps(entry: { name: string; sha256: string }, manifest: Manifest): boolean {
    if (!Object.values(manifest.graphs).includes(entry.name)) return true;
    try {
      const { loader } = this.select(manifest);
      return loader.holds?.(this.#effective(manifest), entry.sha256) !== true;
    } catch {
      return true;
    }
  }

  /** The manifest as loaders see it: with the server's default runtime when it names none. */
  #effective(manifest: Manifest): Manifest {
    return { ...manifest, runtime: manifest.runtime ?? this.#defaultRuntime };
  }

  /** The loader that runs this manifest; throws LOADER_NOT_FOUND when none does. */
  select(manifest: Manifest): LoaderEntry {
    const effective = this.#effective(manifest);
    for (const entry of this.#entries) {
      let yes: boolean;
      try {
        yes = entry.loader.supports(effective) === true;
      } catch (cause) {
        throw new HotocrError(
          'LOAD_FAILED',
          `The loader "${entry.loader.name}" failed while asked whether it runs ${manifest.name} ${manifest.version}: ${messageOf(cause)}`,
          { cause, details: { loader: entry.loader.name } },
        );
      }
      if (yes) return entry;
    }
    const names = this.#entries.map((e) => e.loader.name).join(', ');
    throw new PackageRejectedError(
      'LOADER_NOT_FOUND',
      `No loader runs ${manifest.name} ${manifest.version} (runtime "${effective.runtime}"); the loaders here are ${names}. Install a plugin for it and start the server with --loader.`,
      { details: { runtime: effective.runtime, loaders: this.#entries.map((e) => e.loader.name) } },
    );
  }

  /**
   * Loads a verified package with the loader that supports it. The loader sees the manifest,
   * the package hash and the verified bytes, never a path. A plugin's failure (a throw, a
   * timeout, a model of the wrong shape) fails the version with LOAD_FAILED and its message.
   */
  async load(pkg: LoaderPackage, options: LoadOptions = {}): Promise<ServedModel> {
    const { loader, plugin } = this.select(pkg.manifest);
    const manifest = this.#effective(pkg.manifest);
    const view: LoaderPackage = {
      manifest,
      sha256: pkg.sha256,
      files: new Map(pkg.files),
      ...(pkg.filesMovable ? { filesMovable: true } : {}),
      ...(pkg.digests ? { digests: pkg.digests } : {}),
    };
    const loadOptions = { ...this.#loadOptions, ...options };
    let model: LoadedModel;
    if (plugin === undefined) {
      model = await loader.load(view, loadOptions);
    } else {
      const what = `${manifest.name} ${manifest.version}`;
      try {
        model = await withTimeout(
          Promise.resolve().then(() => loader.load(view, loadOptions)),
          this.#pluginTimeoutMs,
          (late) => void Promise.resolve(late?.release?.()).catch(() => {}),
          `The loader "${loader.name}" did not load ${what} within ${this.#pluginTimeoutMs} ms.`,
        );
      } catch (cause) {
        if (cause instanceof HotocrError && cause.code === 'LOAD_FAILED') throw cause;
        throw new HotocrError(
          'LOAD_FAILED',
          `The loader "${loader.name}" could not load ${what}: ${messageOf(cause)}`,
          { cause, details: { loader: loader.name } },
        );
      }
      if (!model || typeof model.read !== 'function' || typeof model.release !== 'function') {
        await Promise.resolve((model as Partial<LoadedModel> | undefined)?.release?.()).catch(() => {});
        throw new HotocrError(
          'LOAD_FAILED',
          `The loader "${loader.name}" returned no usable model for ${what}: a model needs read() and release().`,
          { details: { loader: loader.name } },
        );
      }
      model = contained(loader.name, model);
    }
    const served: ServedModel = {
      loader: loader.name,
      metadata: metadataOf(loader, manifest),
      read: (image, readOptions) => model.read(image, readOptions),
      ready: async () => {
        await model.ready?.();
      },
      fault: () => model.fault?.(),
      sharedSessions: () => model.sharedSessions?.() ?? 0,
      release: () => model.release(),
    };
    return served;
  }
}
