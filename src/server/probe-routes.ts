import type { FastifyInstance } from 'fastify';
import { HotocrError } from '../errors.js';
import type { ModelVersion, Registry } from '../registry/index.js';
import type { Router, TrafficStats } from '../routing/index.js';
import type { Metrics } from './metrics.js';
import { errors, statsSchema, statusSchema } from './schemas.js';

export interface ProbeRouteOptions {
  readonly registry: Registry;
  readonly router: Router;
  readonly metrics: Metrics;
  readonly stats: TrafficStats;
  /** Whether /readyz needs every model to read, not just the default one. */
  readonly readyAllModels: boolean;
}

const refOf = (v: ModelVersion) => ({ name: v.name, version: v.version });

/**
 * What a probe, a scraper or a chart asks: alive, ready (NOT_READY, 503, through the one
 * error handler, while the model requests go to cannot be answered), the Prometheus
 * metrics and the recent traffic per version.
 */
export async function probeRoutes(app: FastifyInstance, options: ProbeRouteOptions): Promise<void> {
  const { registry, router, metrics, stats, readyAllModels } = options;
  app.get(
    '/v1/stats',
    {
      schema: {
        summary: 'Recent OCR traffic per version (the dashboard charts): requests/s, p99, a 5-minute series',
        tags: ['probes'],
        response: { 200: statsSchema },
      },
    },
    async () => ({ now: Date.now(), versions: stats.snapshot() }),
  );
  app.get(
    '/healthz',
    { schema: { summary: 'Alive', tags: ['probes'], response: { 200: statusSchema } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary:
          'Ready while the default model (every model, with --ready-all-models) has an active version that can read',
        tags: ['probes'],
        response: { 200: statusSchema, ...errors },
      },
    },
    async () => {
      const notReady = (message: string): never => {
        throw new HotocrError('NOT_READY', message);
      };
      const faultOf = (v: ModelVersion) => {
        const fault = v.model?.fault?.();
        return fault ? `${v.name} ${v.version} is active but cannot read: ${fault}` : undefined;
      };
      if (readyAllModels) {
        const names = [...new Set(registry.versions().map((v) => v.name))].sort();
        const missing = names.filter((n) => !registry.active(n));
        if (names.length === 0) return notReady('No model version is active yet.');
        if (missing.length > 0) return notReady(`No version is active yet for ${missing.join(', ')}.`);
        for (const n of names) {
          const fault = faultOf(registry.active(n)!);
          if (fault) return notReady(fault);
        }
        return { status: 'ready', models: names.map((n) => refOf(registry.active(n)!)) };
      }
      // The model requests without a name go to: ready means they are answered.
      const name = router.defaultName();
      const v = name === undefined ? undefined : registry.active(name);
      if (!v) {
        const served = registry.versions().filter((x) => x.state === 'active');
        return notReady(
          served.length > 1
            ? `${served.length} models are active and none is the default (--default-model); requests without a model name would be refused.`
            : name !== undefined
              ? `No version of the default model ${name} is active yet.`
              : 'No model version is active yet.',
        );
      }
      const fault = faultOf(v);
      if (fault) return notReady(fault);
      return { status: 'ready', model: refOf(v) };
    },
  );
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['probes'] } },
    async (_request, reply) => {
      void reply.header('content-type', metrics.contentType);
      return metrics.text();
    },
  );
}
