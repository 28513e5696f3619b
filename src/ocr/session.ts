/** A dense float32 tensor. */
export interface Tensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/**
 * One graph, ready to run: what the OCR pipeline needs from a runtime. The PP-OCR graphs
 * take one input and give one output. Implementations wrap onnxruntime (or another backend)
 * and must be safe to call concurrently.
 */
export interface GraphSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(input: Tensor): Promise<Tensor>;
}
