/**
 * The composition root: `startServer` assembles the process (registry, loaders and their
 * inference threads, verification and trust, sources, the HTTP app) from a configuration.
 */
export { type RunningServer, startServer } from './serve.js';
