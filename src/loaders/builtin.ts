import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ModelLoader } from './contract.js';
import type { BuiltinRuntime } from './ocr-worker.js';
import { holdsOptimizedGraph, OcrWorkerPool } from './worker-pool.js';

const require = createRequire(import.meta.url);

/**
 * The installed version of an npm package, read from its package.json without importing it
 * (importing onnxruntime-node would load the native binding into the main thread).
 */
function installedVersion(name: string): string {
  try {
    let dir = dirname(require.resolve(name));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === name) return pkg.version ?? 'unknown';
      } catch {
        // no package.json here; look further up
      }
      const up = dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
  } catch {
    return 'not installed';
  }
}

function onnxruntimeLoader(runtime: BuiltinRuntime, npmPackage: string, backend: string): ModelLoader {
  let version: string | undefined;
  return {
    name: runtime,
    supports: (manifest) => manifest.runtime === runtime,
    load: (pkg, options) => OcrWorkerPool.create(pkg, { ...options, runtime }),
    // Graphs onnxruntime-node optimized before load from that form, without their bytes.
    ...(runtime === 'onnxruntime-node' ? { holds: (_m, sha256) => holdsOptimizedGraph(sha256) } : {}),
    metadata: () => {
      version ??= installedVersion(npmPackage);
      return { runtime: npmPackage, runtimeVersion: version, backend };
    },
  };
}

/** onnxruntime-node: the native CPU runtime, the default. */
export const onnxruntimeNodeLoader: ModelLoader = onnxruntimeLoader(
  'onnxruntime-node',
  'onnxruntime-node',
  'cpu',
);

/**
 * onnxruntime-web's WebAssembly backend, run inside Node: the same graphs and pipeline for
 * machines where the native binding cannot be installed.
 */
export const onnxruntimeWasmLoader: ModelLoader = onnxruntimeLoader(
  'onnxruntime-wasm',
  'onnxruntime-web',
  'wasm',
);

export const BUILTIN_LOADERS: readonly ModelLoader[] = [onnxruntimeNodeLoader, onnxruntimeWasmLoader];

/** The runtime a package without `runtime` in its manifest runs on, unless the server says otherwise. */
export const DEFAULT_RUNTIME = 'onnxruntime-node';
