import * as ort from 'onnxruntime-node';
import { PackageRejectedError } from '../errors.js';
import type { GraphSession, Tensor } from '../ocr/index.js';

export interface SessionOptions {
  /** Threads one run() may use (default: 2, the reference machine's cores). */
  readonly intraOpThreads?: number;
  /** onnxruntime's CPU memory arena; off returns memory to the allocator when a session is released. */
  readonly cpuMemArena?: boolean;
  /** Let idle intra-op threads spin-wait (onnxruntime's own default; ours is off): a little lower latency, but a core burnt while idle. */
  readonly spinning?: boolean;
}

/** An onnxruntime-node session behind the {@link GraphSession} contract. */
export class OrtGraphSession implements GraphSession {
  readonly #session: ort.InferenceSession;
  readonly #input: string;
  readonly #output: string;
  #released = false;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];

  private constructor(session: ort.InferenceSession) {
    this.#session = session;
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.#input = session.inputNames[0] ?? '';
    this.#output = session.outputNames[0] ?? '';
  }

  /**
   * Creates a session from verified bytes, never from a path (a path could be swapped
   * between verification and use). Throws GRAPH_INVALID when onnxruntime cannot open it.
   */
  static async create(
    role: string,
    bytes: Uint8Array,
    options: SessionOptions = {},
  ): Promise<OrtGraphSession> {
    try {
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: options.intraOpThreads ?? 2,
        interOpNumThreads: 1,
        enableCpuMemArena: options.cpuMemArena ?? true,
        // Idle intra-op threads spin by default, taking a core from whatever else runs.
        extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
      });
      return new OrtGraphSession(session);
    } catch (cause) {
      throw new PackageRejectedError(
        'GRAPH_INVALID',
        `The ${role} graph cannot be opened by onnxruntime: ${(cause as Error).message}`,
        {
          cause,
          details: { role },
        },
      );
    }
  }

  async run(input: Tensor): Promise<Tensor> {
    if (this.#released) throw new Error('session released');
    const feeds = { [this.#input]: new ort.Tensor('float32', input.data, input.dims as number[]) };
    const out = await this.#session.run(feeds);
    const tensor = out[this.#output]!;
    const result = { data: tensor.data as Float32Array, dims: tensor.dims };
    for (const t of Object.values(out)) if (t !== tensor) t.dispose();
    return result;
  }

  /** Frees the native session. Safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#session.release();
  }
}
