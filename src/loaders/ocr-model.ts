import type { LoaderPackage, LoadOptions, ServedModel } from './contract.js';
import { Loaders } from './loaders.js';

/**
 * Loads a verified package with the built-in loaders (the manifest's `runtime` chooses
 * onnxruntime-node or onnxruntime-wasm; native when it names none). For tools and tests;
 * the server goes through its own {@link Loaders}, which may hold plugins.
 */
export function loadOcrModel(pkg: LoaderPackage, options: LoadOptions = {}): Promise<ServedModel> {
  return Loaders.builtin().load(pkg, options);
}
