export { type AppOptions, createApp, type HotocrApp } from './app.js';
export type { RetireReport, TrustControl, TrustReload } from './trust.js';
export { clearUploads } from './uploads.js';
