import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ModelLoader } from './contract.js';
import type { BuiltinRuntime } from './inference-protocol.js';
import type { InferenceThreads } from './inference-threads.js';

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

function onnxruntimeLoader(
  threads: InferenceThreads,
  runtime: BuiltinRuntime,
  npmPackage: string,
  backend: string,
): ModelLoader {
  let version: string | undefined;
  return {
    name: runtime,
    supports: (manifest) => manifest.runtime === runtime,
    load: (pkg, options) => threads.load(pkg, { ...options, runtime }),
    // Graphs onnxruntime-node optimized before load from that form, without their bytes.
    ...(runtime === 'onnxruntime-node' ? { holds: (_m, sha256) => threads.holdsOptimizedGraph(sha256) } : {}),
    metadata: () => {
      version ??= installedVersion(npmPackage);
      return { runtime: npmPackage, runtimeVersion: version, backend };
    },
  };
}

/**
 * The built-in loaders, running their graphs on `threads`: onnxruntime-node, the native CPU
 * runtime and the default; and onnxruntime-web's WebAssembly backend, run inside Node, with
 * the same graphs and pipeline for machines where the native binding cannot be installed.
 */
export function builtinLoaders(threads: InferenceThreads): readonly ModelLoader[] {
  return [
    onnxruntimeLoader(threads, 'onnxruntime-node', 'onnxruntime-node', 'cpu'),
    onnxruntimeLoader(threads, 'onnxruntime-wasm', 'onnxruntime-web', 'wasm'),
  ];
}

/** The built-in loaders' names, which no plugin may take. */
export const BUILTIN_NAMES: readonly string[] = ['onnxruntime-node', 'onnxruntime-wasm'];

/** The runtime a package without `runtime` in its manifest runs on, unless the server says otherwise. */
export const DEFAULT_RUNTIME = 'onnxruntime-node';
