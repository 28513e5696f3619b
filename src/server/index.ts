export { type AppOptions, createApp } from './app.js';
export { type RunningServer, startServer } from './serve.js';
