export type { RegistryEvent, RegistryEventType } from './events.js';
export { Registry, type RegistryOptions, type SubmitOptions } from './registry.js';
export { EMPTY_STATE, type PersistedState, StateStore, type VersionRef } from './state-store.js';
export { type Lease, ModelVersion, type VersionState } from './version.js';
export { warmUp } from './warmup.js';
