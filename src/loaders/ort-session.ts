// Types only: onnxruntime-node and onnxruntime-web share onnxruntime-common's API.
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { messageOf, PackageRejectedError } from '../errors.js';
import type { GraphSession, Tensor } from '../ocr/index.js';

/** The part of an onnxruntime package (onnxruntime-node or onnxruntime-web) a session needs. */
export interface OrtModule {
  readonly InferenceSession: {
    create(bytes: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
  readonly Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

export interface SessionOptions {
  /** Threads one run() may use (default: 2, the reference machine's cores). Native runtime only. */
  readonly intraOpThreads?: number;
  /** onnxruntime's CPU memory arena; off returns memory to the allocator when a session is released. */
  readonly cpuMemArena?: boolean;
  /** Let idle intra-op threads spin-wait (onnxruntime's own default; ours is off): a little lower latency, but a core burnt while idle. */
  readonly spinning?: boolean;
}

/**
 * One graph opened by an onnxruntime package, behind the {@link GraphSession} contract.
 * Both runtimes share onnxruntime-common's API, so one class serves them.
 */
export class OrtGraphSession implements GraphSession {
  readonly #ort: OrtModule;
  readonly #session: InferenceSession;
  readonly #input: string;
  readonly #output: string;
  #released = false;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];

  private constructor(ort: OrtModule, session: InferenceSession) {
    this.#ort = ort;
    this.#session = session;
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.#input = session.inputNames[0] ?? '';
    this.#output = session.outputNames[0] ?? '';
  }

  /**
   * Creates a session from verified bytes, never from a path (a path could be swapped
   * between verification and use). Throws GRAPH_INVALID when the runtime cannot open it.
   */
  static async open(
    ort: OrtModule,
    runtime: string,
    role: string,
    bytes: Uint8Array,
    options: InferenceSession.SessionOptions,
  ): Promise<OrtGraphSession> {
    try {
      return new OrtGraphSession(ort, await ort.InferenceSession.create(bytes, options));
    } catch (cause) {
      throw new PackageRejectedError(
        'GRAPH_INVALID',
        `The ${role} graph cannot be opened by ${runtime}: ${messageOf(cause)}`,
        { cause, details: { role, runtime } },
      );
    }
  }

  async run(input: Tensor): Promise<Tensor> {
    if (this.#released) throw new Error('session released');
    const feeds = { [this.#input]: new this.#ort.Tensor('float32', input.data, input.dims) };
    const out = await this.#session.run(feeds);
    const tensor = out[this.#output]!;
    const result = { data: tensor.data as Float32Array, dims: tensor.dims };
    for (const t of Object.values(out)) if (t !== tensor) t.dispose();
    return result;
  }

  /** Frees the session. Safe to call twice. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#session.release();
  }
}
