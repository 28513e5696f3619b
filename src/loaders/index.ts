/**
 * Loaders turn verified packages into models that read images. Nothing outside this folder
 * imports a runtime: the registry and the server know only the contract.
 */
export { DEFAULT_RUNTIME, onnxruntimeNodeLoader, onnxruntimeWasmLoader } from './builtin.js';
export type {
  LoadedModel,
  LoaderMetadata,
  LoaderPackage,
  LoadOptions,
  ModelLoader,
  ReadOptions,
  ServedModel,
} from './contract.js';
export { type LoaderEntry, Loaders, type LoadersOptions } from './loaders.js';
export { loadOcrModel } from './ocr-model.js';
export type { SessionOptions } from './ort-session.js';
export { canRestorePriority } from './priority.js';
export {
  type InferenceThreadEvent,
  lostInferenceThreads,
  OcrWorkerPool,
  onInferenceThreads,
  optimizedGraphStats,
  type PoolOptions,
  replacedInferenceThreads,
  sharedGraphSessions,
} from './worker-pool.js';
