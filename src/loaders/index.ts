export { type LoadedOcrModel, loadOcrModel } from './ocr-model.js';
export { OrtGraphSession, type SessionOptions } from './onnxruntime-node.js';
export { OcrWorkerPool, type PoolOptions } from './worker-pool.js';
