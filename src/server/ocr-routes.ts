import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HotocrError } from '../errors.js';
import { decodeImage } from '../ocr/index.js';
import type { Router, TrafficStats } from '../routing/index.js';
import type { Admission } from './admission.js';
import type { Metrics } from './metrics.js';
import { multipartError, multipartFile } from './multipart-file.js';
import { errors, nameParams, ocrResultSchema, type SchemaTypes } from './schemas.js';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/tiff'];

export interface OcrRouteOptions {
  readonly router: Router;
  readonly admission: Admission;
  readonly metrics: Metrics;
  readonly stats: TrafficStats;
  /** Largest image accepted, raw or as a multipart file. */
  readonly bodyLimit: number;
  /** From arrival to answer, waiting included. */
  readonly requestTimeoutMs: number;
}

interface OcrRequestState {
  /** The model the request goes to, told before its body is read. */
  model: string;
  started: number;
  signal: AbortSignal;
  /** Answers 408 if the body is still incomplete at the deadline; cleared once the body is read. */
  bodyTimer: NodeJS.Timeout;
}

const state = new WeakMap<FastifyRequest, OcrRequestState>();
const round = (n: number) => Math.round(n * 10) / 10;

/**
 * POST /v1/ocr (the default model) and POST /v1/models/{name}/ocr, in a scope of their own:
 * they parse only image bodies and multipart. The model is told and the request admitted
 * against that model's places (or refused: MODEL_NOT_FOUND, MODEL_REQUIRED, NOT_READY,
 * OVERLOADED) before its body is read; a client that goes away stops its work at the next
 * stage and never takes a lease if it was still waiting.
 */
export async function ocrRoutes(app: FastifyInstance, options: OcrRouteOptions): Promise<void> {
  const { router, admission, metrics } = options;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(multipart, {
    limits: { fileSize: options.bodyLimit, files: 1, fields: 10, parts: 20, fieldSize: 1024 },
  });

  /** Admits a request to the model it goes to (`named` in its path, or else), before its body is read. */
  async function admit(
    request: FastifyRequest,
    reply: FastifyReply,
    named: string | undefined,
  ): Promise<void> {
    const model = modelOf(request, named);
    const release = admission.admit(model);
    const controller = new AbortController();
    // The deadline covers the body too: a client that sends it a byte at a time must not keep
    // its admitted place. Past the deadline with the body incomplete: 408, and the connection closes.
    const bodyTimer = setTimeout(() => {
      if (request.raw.complete || reply.sent) return;
      void reply
        .code(408)
        .header('Connection', 'close')
        .send({
          error: {
            code: 'BODY_TIMEOUT',
            message: `The request body did not arrive within ${options.requestTimeoutMs} ms.`,
          },
        });
    }, options.requestTimeoutMs);
    reply.raw.once('close', () => {
      clearTimeout(bodyTimer);
      release();
      if (!reply.raw.writableFinished) controller.abort();
    });
    state.set(request, { model, started: performance.now(), signal: controller.signal, bodyTimer });
  }
  app.addHook('onResponse', async (request, reply) => {
    const header = reply.getHeader('x-model-version');
    const version = typeof header === 'string' ? header : undefined;
    const model = state.get(request)?.model ?? '';
    metrics.ocrRequest(model, version, reply.statusCode, reply.elapsedTime / 1000);
    if (version) options.stats.record(version, reply.elapsedTime, reply.statusCode >= 500);
  });

  /**
   * The model a request goes to: the one its path names, else the one its pin names, else
   * the default model. Throws when there is none to go to.
   */
  function modelOf(request: FastifyRequest, named: string | undefined): string {
    const pin = header(request, 'x-model-version');
    const pinned = pin?.includes('/') ? pin.slice(0, pin.indexOf('/')) : undefined;
    const model = router.resolve(named ?? pinned);
    // Nothing to serve and no pin (which may name a staged version): refused before the body is read.
    if (!pin && model.view().active === null)
      throw new HotocrError('NOT_READY', `No version of ${model.name} is active yet; retry shortly.`);
    return model.name;
  }

  async function read(request: FastifyRequest, reply: FastifyReply) {
    const { model: name, started, signal, bodyTimer } = state.get(request)!;
    const bytes = await imageOf(request, options.bodyLimit);
    // The body is in: from here the deadline is the read's (503 TIMEOUT), not the body's.
    clearTimeout(bodyTimer);
    const deadline = started + options.requestTimeoutMs;
    const work = admission.run(
      async () => {
        const waited = performance.now() - started;
        const lease = router.lease({
          userId: header(request, 'x-user-id'),
          pin: header(request, 'x-model-version'),
          model: name,
        });
        if (!lease) throw new HotocrError('NOT_READY', `No version of ${name} is active yet; retry shortly.`);
        try {
          const { model, version: served } = lease;
          void reply.header('X-Model-Version', `${served.name}/${served.version}`);
          const t0 = performance.now();
          const image = await decodeImage(bytes);
          const decode = performance.now() - t0;
          const result = await model.read(image, { signal });
          return { served, result, waited, decode };
        } finally {
          lease.release();
        }
      },
      deadline,
      signal,
      name,
    );
    const { served, result, waited, decode } = await beforeDeadline(work, deadline);
    return {
      model: { name: served.name, version: served.version },
      lines: result.lines.map((l) => ({
        text: l.text,
        score: Math.round(l.score * 1e4) / 1e4,
        box: l.box,
      })),
      timings: {
        queue: round(waited),
        decode: round(decode),
        det: round(result.timings.det),
        cls: round(result.timings.cls),
        rec: round(result.timings.rec),
        inference: round(result.timings.inference),
        total: round(performance.now() - started),
      },
    };
  }

  const headers = {
    type: 'object',
    properties: {
      'x-user-id': { type: 'string', maxLength: 256 },
      'x-model-version': { type: 'string', maxLength: 256 },
    },
  } as const;
  const response = {
    200: {
      description: 'The lines, the version that read them (also in X-Model-Version) and timings',
      ...ocrResultSchema,
    },
    ...errors,
  };
  const body =
    'The body is the image (image/png, image/jpeg, image/webp, image/tiff) or a multipart/form-data file. X-User-Id keeps one user on one version during a split; X-Model-Version (name/version) pins a version of the model when its pinning is allowed.';
  // Request types come from the route schemas: the named route's `name` is typed by nameParams.
  const typed = app.withTypeProvider<SchemaTypes>();
  typed.post(
    '/v1/ocr',
    {
      onRequest: (request, reply) => admit(request, reply, undefined),
      schema: {
        summary: 'Read the text in an image with the default model',
        description: `${body} The default model is --default-model, else the only model with an active version (400 MODEL_REQUIRED when several are and none is the default).`,
        tags: ['ocr'],
        headers,
        response,
      },
    },
    read,
  );
  typed.post(
    '/v1/models/:name/ocr',
    {
      onRequest: (request, reply) => admit(request, reply, request.params.name),
      schema: {
        summary: 'Read the text in an image with the model named',
        description: `${body} 404 MODEL_NOT_FOUND for a name the server does not know, 503 NOT_READY for one with no active version.`,
        tags: ['ocr'],
        params: nameParams,
        headers,
        response,
      },
    },
    read,
  );
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** The image bytes of a raw or multipart body. */
async function imageOf(request: FastifyRequest, limit: number): Promise<Buffer> {
  if (request.isMultipart()) {
    const part = await multipartFile(request, 'image');
    if (!IMAGE_TYPES.includes(part.mimetype) && part.mimetype !== 'application/octet-stream') {
      part.file.resume();
      throw new HotocrError(
        'UNSUPPORTED_MEDIA_TYPE',
        `The file is ${part.mimetype}; send image/png, image/jpeg, image/webp or image/tiff.`,
      );
    }
    const bytes = await part.toBuffer().catch((error: unknown) => {
      throw multipartError(error);
    });
    if (part.file.truncated)
      throw new HotocrError('BODY_TOO_LARGE', `The image is over the ${limit}-byte limit.`);
    if (bytes.length > 0) return bytes;
  } else if (Buffer.isBuffer(request.body) && request.body.length > 0) return request.body;
  throw new HotocrError(
    'BODY_MISSING',
    'Send the image bytes as the request body (Content-Type image/png, image/jpeg, image/webp or image/tiff) or as a multipart file.',
  );
}

/** The work's result, or TIMEOUT at the deadline (the work still ends on its own, and frees its slot). */
function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HotocrError(
            'TIMEOUT',
            'The request took longer than the request timeout (--request-timeout-ms); retry later.',
          ),
        ),
      Math.max(0, deadline - performance.now()),
    );
  });
  work.catch(() => {}); // settled below or abandoned at the deadline
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
