import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { FastifyBaseLogger } from 'fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import { serveDefaults } from '../config.js';
import { HotocrError } from '../errors.js';
import type { InferenceThreads } from '../loaders/index.js';
import type { Registry } from '../registry/index.js';
import { CanaryGuard, type CanaryGuardOptions, Router, TrafficStats } from '../routing/index.js';
import { VERSION } from '../version.js';
import { Admission, RETRY_AFTER_SECONDS } from './admission.js';
import { adminGuard } from './auth.js';
import { dashboardRoutes } from './dashboard.js';
import { errorHandler } from './errors.js';
import { eventStream, type StreamEvent } from './events-stream.js';
import { type FleetOptions, fleetRoutes } from './fleet.js';
import { Metrics } from './metrics.js';
import { describeModels, modelRoutes, PACKAGE_TYPES } from './model-routes.js';
import { IMAGE_TYPES, ocrRoutes } from './ocr-routes.js';
import { probeRoutes } from './probe-routes.js';
import { profilingRoutes } from './profiling-routes.js';
import type { TrustControl } from './trust.js';

export interface AppOptions {
  readonly registry: Registry;
  readonly logger: FastifyBaseLogger | false;
  /** Where uploads are written while they arrive and are verified. */
  readonly uploadsDir: string;
  /** Without one, every admin call is refused with ADMIN_DISABLED. */
  readonly adminToken?: string;
  /** Largest image (default 20 MB) and largest package upload (default 1 GiB). */
  readonly bodyLimit?: number;
  readonly uploadLimit?: number;
  /** Inferences at once (default 2) and requests waiting behind them (default 32). */
  readonly maxInflight?: number;
  readonly maxQueue?: number;
  /** From arrival to answer, waiting included (default 30 s). */
  readonly requestTimeoutMs?: number;
  /**
   * Longest a client may take to send its request headers before the connection is closed
   * (default 15 s): slow-header clients (slowloris) cannot hold connections open for long.
   */
  readonly headersTimeoutMs?: number;
  /** Whether X-Model-Version pins a version (default false; changeable with PUT /v1/routing). */
  readonly allowPinning?: boolean;
  /** The model POST /v1/ocr and /v1/routing go to (default: the only model with an active version). */
  readonly defaultModel?: string;
  /** Whether /readyz needs every model to read, not just the default one (default false). */
  readonly readyAllModels?: boolean;
  /** The registry source and the other replicas, for the webhook and the fleet view. */
  readonly fleet?: Omit<FleetOptions, 'registry'>;
  /** The trust store in use, read again on demand; with it come the admin trust routes. */
  readonly trust?: TrustControl;
  /**
   * Automatic canary rollback: on when a margin is given (errorMargin, p99Margin); by default
   * after 50 requests each, looking back at most 60 s, checked every second.
   */
  readonly canary?: Partial<CanaryGuardOptions> & { checkEveryMs?: number };
  /** Event-stream limits (defaults: 1000 clients, 1 MiB unsent each, 30 s heartbeat). */
  readonly events?: { maxClients?: number; maxBufferedBytes?: number; heartbeatMs?: number };
  /** The process's inference threads, for the metrics. */
  readonly threads?: InferenceThreads;
}

export interface HotocrApp {
  readonly app: FastifyInstance;
  readonly router: Router;
  readonly metrics: Metrics;
  readonly admission: Admission;
}

/** Request ids from X-Request-Id when they are sane, else fresh ones; echoed back on every answer. */
function requestId(request: { headers: Record<string, string | string[] | undefined> }): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

/**
 * The HTTP API of SPEC section 5: OCR, the management and routing API, the event stream,
 * metrics, probes, profiling and the OpenAPI document generated from the route schemas.
 */
export async function createApp(options: AppOptions): Promise<HotocrApp> {
  // Defaults are the settings table's, so that an app made here behaves as `hotocr serve`.
  const defaults = serveDefaults();
  const headersTimeout = options.headersTimeoutMs ?? defaults.headersTimeoutMs;
  const common = {
    // Node looks for connections past the headers timeout every connectionsCheckingInterval.
    http: { headersTimeout, connectionsCheckingInterval: Math.min(30_000, Math.ceil(headersTimeout / 4)) },
    bodyLimit: options.bodyLimit ?? defaults.bodyLimit,
    genReqId: requestId,
    // Errors fastify raises before routing (a URL with bad percent-encoding) get our shape too.
    frameworkErrors: errorHandler,
    // Unknown fields are refused rather than silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  };
  const app: FastifyInstance = options.logger
    ? Fastify({ ...common, loggerInstance: options.logger })
    : Fastify({ ...common, logger: false });
  const { registry } = options;
  const admission = new Admission({
    maxInflight: options.maxInflight ?? defaults.maxInflight,
    maxQueue: options.maxQueue ?? defaults.maxQueue,
  });
  const router = new Router(registry, {
    allowPinning: options.allowPinning ?? false,
    defaultModel: options.defaultModel,
  });
  const metrics = new Metrics(registry, admission, {
    ...(options.trust ? { trust: () => options.trust!.current().entries() } : {}),
    ...(options.fleet?.sources?.length
      ? { registrySources: () => options.fleet!.sources!.map((s) => s.status) }
      : {}),
    ...(options.threads ? { threads: options.threads } : {}),
  });
  const stats = new TrafficStats();
  const { canary } = options;
  if (canary && (canary.errorMargin !== undefined || canary.p99Margin !== undefined)) {
    const guard = new CanaryGuard(
      () => router.models(),
      stats,
      {
        ...(canary.errorMargin !== undefined ? { errorMargin: canary.errorMargin } : {}),
        ...(canary.p99Margin !== undefined ? { p99Margin: canary.p99Margin } : {}),
        minRequests: canary.minRequests ?? defaults.canaryMinRequests,
        windowSeconds: canary.windowSeconds ?? 60,
      },
      (r) => metrics.canaryRollback(r.name, r.canary.version, r.cause),
    );
    guard.start(canary.checkEveryMs ?? 1000);
    app.addHook('onClose', async () => guard.stop());
  }
  const admin = adminGuard(options.adminToken);

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(async (request) => {
    throw new HotocrError('NOT_FOUND', `No route ${request.method} ${request.url.slice(0, 200)}.`);
  });
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
  });
  app.addHook('onSend', async (request, reply) => {
    void reply.header('X-Request-Id', request.id);
    // Answers finishing during shutdown close their connection, so no idle keep-alive holds it up;
    // so do answers given before the body was read (401, 413, 503...): the rest of it is not wanted.
    if (stopping || !request.raw.complete) void reply.header('Connection', 'close');
    if (reply.statusCode === 503) void reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
    if (reply.statusCode === 401) void reply.header('WWW-Authenticate', 'Bearer');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'hotocr',
        version: VERSION,
        description:
          'OCR server whose signed model packages are verified and hot-swapped while it serves. Errors are {error: {code, message}}.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transformObject: (document) =>
      'openapiObject' in document
        ? withBinaryBodies(document.openapiObject as OpenApi)
        : document.swaggerObject,
  });

  await app.register(ocrRoutes, {
    router,
    admission,
    metrics,
    stats,
    bodyLimit: common.bodyLimit,
    requestTimeoutMs: options.requestTimeoutMs ?? defaults.requestTimeoutMs,
  });
  await app.register(fleetRoutes, { registry, ...options.fleet });
  await app.register(modelRoutes, {
    registry,
    router,
    admin,
    uploadsDir: options.uploadsDir,
    uploadLimit: options.uploadLimit ?? defaults.uploadLimit,
    ...(options.trust ? { trust: options.trust } : {}),
  });
  // The last events, so a page opened (or reconnected) now sees what just happened.
  const recent: StreamEvent[] = [];
  const remember = (event: StreamEvent) => {
    recent.push(event);
    if (recent.length > 100) recent.shift();
  };
  registry.on(remember);
  router.on(remember);
  await app.register(eventStream, {
    subscribe: (listener: (event: StreamEvent) => void) => {
      const offRegistry = registry.on(listener);
      const offRouter = router.on(listener);
      return () => {
        offRegistry();
        offRouter();
      };
    },
    snapshot: () => ({
      type: 'snapshot',
      ts: new Date().toISOString(),
      ...describeModels(registry, options.trust),
      routing: router.view(),
      routings: router.views(),
      recent: [...recent],
    }),
    ...options.events,
  });

  await app.register(dashboardRoutes);
  await app.register(probeRoutes, {
    registry,
    router,
    metrics,
    stats,
    readyAllModels: options.readyAllModels ?? false,
  });
  app.get(
    '/openapi.json',
    { schema: { summary: 'This API, described by OpenAPI 3', tags: ['probes'] } },
    async () => app.swagger(),
  );

  await app.register(profilingRoutes, { admin });

  return { app, router, metrics, admission };
}

type OpenApi = { paths?: Record<string, Record<string, { requestBody?: unknown }>> };

/** Request bodies that are bytes, not JSON, which route schemas cannot describe. */
function withBinaryBodies(doc: OpenApi): OpenApi {
  const binary = { schema: { type: 'string', format: 'binary' } };
  const file = {
    schema: {
      type: 'object',
      properties: { file: { type: 'string', format: 'binary' } },
      required: ['file'],
    },
  };
  const bodies: Record<string, string[]> = {
    '/v1/ocr': IMAGE_TYPES,
    '/v1/models/{name}/ocr': IMAGE_TYPES,
    '/v1/models': PACKAGE_TYPES,
  };
  for (const [path, types] of Object.entries(bodies)) {
    const post = doc.paths?.[path]?.post;
    if (!post) continue;
    post.requestBody = {
      required: true,
      content: {
        ...Object.fromEntries(types.map((t) => [t, binary])),
        'multipart/form-data': file,
      },
    };
  }
  return doc;
}
