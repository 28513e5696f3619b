export { type AppOptions, createApp, type HotocrApp } from './app.js';
export { Router, type RoutingView, userPoint } from './routing.js';
export { type RunningServer, startServer } from './serve.js';
