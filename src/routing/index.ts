/**
 * Which version answers a request: traffic split per model (canary, A/B, pinning), the
 * canary guard that ends a split whose new version does worse, and the recent traffic per
 * version it judges by. The server asks this; it knows no HTTP.
 */
export {
  type CanaryFigures,
  CanaryGuard,
  type CanaryGuardOptions,
  type CanaryRollback,
  type GuardedRouter,
  P99_FLOOR_MS,
} from './canary.js';
export {
  ModelRouter,
  Router,
  type RoutingEvent,
  type RoutingUpdate,
  type RoutingView,
  type Split,
  userPoint,
} from './routing.js';
export { type SeriesPoint, TrafficStats, type VersionStats } from './stats.js';
