import * as ort from 'onnxruntime-node';
import { OrtGraphSession, type SessionOptions } from './ort-session.js';

export const RUNTIME_VERSION: string = ort.env.versions.node ?? 'unknown';

/** Which form a graph's bytes are in, and whether to keep the optimized form. */
export interface GraphForm {
  /** The bytes are this runtime's own optimized form of a graph: open them as they are. */
  readonly optimized?: boolean;
  /** Also write the optimized graph to this file (a path only this thread uses). */
  readonly saveTo?: string;
}

/**
 * Opens one graph in onnxruntime-node's native CPU runtime. A graph this runtime optimized
 * before, in this process, opens as it is, in 0.4-0.7x the time (bench/graph-open).
 */
export function openSession(
  role: string,
  bytes: Uint8Array,
  options: SessionOptions = {},
  form: GraphForm = {},
): Promise<OrtGraphSession> {
  return OrtGraphSession.open(ort, 'onnxruntime-node', role, bytes, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: form.optimized ? 'disabled' : 'all',
    executionMode: 'sequential',
    intraOpNumThreads: options.intraOpThreads ?? 2,
    interOpNumThreads: 1,
    enableCpuMemArena: options.cpuMemArena ?? true,
    // Idle intra-op threads spin by default, taking a core from whatever else runs.
    extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
    ...(form.saveTo
      ? {
          optimizedModelFilePath: form.saveTo,
          // Saving warns that the graph fits this machine alone: it is used in this process only.
          logSeverityLevel: 3 as const,
        }
      : {}),
  });
}
