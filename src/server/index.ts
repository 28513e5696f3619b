export { type AppOptions, createApp, type ServingVersion } from './app.js';
export { type RunningServer, startServer } from './serve.js';
