import * as ort from 'onnxruntime-web';
import { OrtGraphSession, type SessionOptions } from './ort-session.js';

export const RUNTIME_VERSION: string = ort.env.versions.web ?? 'unknown';

// One WebAssembly thread per inference thread: the pool gives parallelism, as it does for
// the native runtime, and onnxruntime-web starts no threads of its own.
ort.env.wasm.numThreads = 1;

/**
 * Opens one graph in onnxruntime-web's WebAssembly backend, running inside Node: for
 * machines where the native binding cannot be installed. Slower than native (bench/ocr-speed).
 */
export function openSession(
  role: string,
  bytes: Uint8Array,
  options: SessionOptions = {},
): Promise<OrtGraphSession> {
  return OrtGraphSession.open(ort, 'onnxruntime-wasm', role, bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    enableCpuMemArena: options.cpuMemArena ?? true,
  });
}
