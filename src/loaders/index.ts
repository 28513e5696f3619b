/**
 * Loaders turn verified packages into models that read images. Nothing outside this folder
 * imports a runtime: the registry and the server know only the contract.
 */
export { builtinLoaders, DEFAULT_RUNTIME } from './builtin.js';
export type {
  LoadedModel,
  LoaderMetadata,
  LoaderPackage,
  LoadOptions,
  ModelLoader,
  ReadOptions,
  ServedModel,
} from './contract.js';
export {
  type InferenceThreadEvent,
  InferenceThreads,
  type InferenceThreadsOptions,
} from './inference-threads.js';
export { type LoaderEntry, Loaders, type LoadersOptions } from './loaders.js';
export { loadOcrModel } from './ocr-model.js';
export type { SessionOptions } from './ort-session.js';
export { canRestorePriority } from './priority.js';
export type { OcrWorkerPool, PoolOptions } from './worker-pool.js';
