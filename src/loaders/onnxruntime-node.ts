import * as ort from 'onnxruntime-node';
import { OrtGraphSession, type SessionOptions } from './ort-session.js';

export const RUNTIME_VERSION: string = ort.env.versions.node ?? 'unknown';

/** Opens one graph in onnxruntime-node's native CPU runtime. */
export function openSession(
  role: string,
  bytes: Uint8Array,
  options: SessionOptions = {},
): Promise<OrtGraphSession> {
  return OrtGraphSession.open(ort, 'onnxruntime-node', role, bytes, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: options.intraOpThreads ?? 2,
    interOpNumThreads: 1,
    enableCpuMemArena: options.cpuMemArena ?? true,
    // Idle intra-op threads spin by default, taking a core from whatever else runs.
    extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
  });
}
