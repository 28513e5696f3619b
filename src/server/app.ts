import type { FastifyBaseLogger } from 'fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import { HotocrError } from '../errors.js';
import type { LoadedOcrModel } from '../loaders/index.js';
import { decodeImage } from '../ocr/index.js';
import type { SignerInfo } from '../verify/index.js';
import { errorHandler } from './errors.js';

/** A model version that is serving, with what the API reports about it. */
export interface ServingVersion {
  readonly model: LoadedOcrModel;
  readonly sha256: string;
  readonly signer: SignerInfo;
  readonly loadedAt: Date;
  inflight: number;
}

export interface AppOptions {
  /** The version that answers requests, or undefined while none is ready. */
  readonly serving: () => ServingVersion | undefined;
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
    const v = options.serving();
    if (!v)
      return reply
        .status(503)
        .send({ error: { code: 'NOT_READY', message: 'No model version is active yet.' } });
    return { status: 'ready', model: { name: v.model.name, version: v.model.version } };
  });

  app.get('/v1/models', async () => {
    const v = options.serving();
    return {
      models: v
        ? [
            {
              name: v.model.name,
              versions: [
                {
                  version: v.model.version,
                  state: 'active',
                  sha256: v.sha256,
                  signer: v.signer,
                  loadedAt: v.loadedAt.toISOString(),
                  inflight: v.inflight,
                },
              ],
            },
          ]
        : [],
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
    const v = options.serving();
    if (!v) throw new HotocrError('NOT_READY', 'No model version is active yet; retry shortly.');
    v.inflight++;
    try {
      const started = performance.now();
      const image = await decodeImage(body);
      const decode = performance.now() - started;
      const result = await v.model.read(image);
      void reply.header('X-Model-Version', `${v.model.name}/${v.model.version}`);
      return {
        model: { name: v.model.name, version: v.model.version },
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
      v.inflight--;
    }
  });

  return app;
}
