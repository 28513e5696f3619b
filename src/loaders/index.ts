export { type LoadedOcrModel, loadOcrModel } from './ocr-model.js';
export { OrtGraphSession, type SessionOptions } from './onnxruntime-node.js';
