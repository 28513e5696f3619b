import type { FastifyBaseLogger } from 'fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import { HotocrError } from '../errors.js';
import { decodeImage } from '../ocr/index.js';
import type { ModelVersion, Registry } from '../registry/index.js';
import { errorHandler } from './errors.js';

export interface AppOptions {
  /** The versions; each request runs on a lease of the active one. */
  readonly registry: Registry;
  readonly logger: FastifyBaseLogger | false;
  /** Largest accepted request body (default 20 MB). */
  readonly bodyLimit?: number;
}

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/tiff'];
const round = (n: number) => Math.round(n * 10) / 10;

/** The HTTP API (SPEC section 5): OCR, the model list and the probes. */
export function createApp(options: AppOptions): FastifyInstance {
  const common = { bodyLimit: options.bodyLimit ?? 20 * 1024 * 1024, requestIdHeader: 'x-request-id' };
  const app: FastifyInstance = options.logger
    ? Fastify({ ...common, loggerInstance: options.logger })
    : Fastify({ ...common, logger: false });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${request.url}.` } });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const v = options.registry.active();
    if (!v)
      return reply
        .status(503)
        .send({ error: { code: 'NOT_READY', message: 'No model version is active yet.' } });
    return { status: 'ready', model: { name: v.name, version: v.version } };
  });

  app.get('/v1/models', async () => {
    const byName = new Map<string, ModelVersion[]>();
    for (const v of options.registry.versions()) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
    return {
      models: [...byName].map(([name, versions]) => ({
        name,
        active: options.registry.active(name)?.version ?? null,
        versions: versions.map((v) => ({
          version: v.version,
          state: v.state,
          sha256: v.sha256,
          source: v.source,
          signer: v.signer,
          loadedAt: v.loadedAt?.toISOString() ?? null,
          inflight: v.inflight,
          ...(v.failure ? { failure: v.failure } : {}),
        })),
      })),
    };
  });

  app.post('/v1/ocr', async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      throw new HotocrError(
        'BODY_MISSING',
        'Send the image bytes as the request body (Content-Type image/png, image/jpeg, image/webp or image/tiff).',
      );
    }
    const lease = options.registry.lease();
    if (!lease) throw new HotocrError('NOT_READY', 'No model version is active yet; retry shortly.');
    // The lease covers the inference, whatever happens to the client meanwhile.
    try {
      const { model } = lease;
      const started = performance.now();
      const image = await decodeImage(body);
      const decode = performance.now() - started;
      const result = await model.read(image);
      void reply.header('X-Model-Version', `${model.name}/${model.version}`);
      return {
        model: { name: model.name, version: model.version },
        lines: result.lines.map((l) => ({
          text: l.text,
          score: Math.round(l.score * 1e4) / 1e4,
          box: l.box,
        })),
        timings: {
          decode: round(decode),
          det: round(result.timings.det),
          cls: round(result.timings.cls),
          rec: round(result.timings.rec),
          inference: round(result.timings.inference),
          total: round(performance.now() - started),
        },
      };
    } finally {
      lease.release();
    }
  });

  return app;
}
