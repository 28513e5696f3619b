import { Session } from 'node:inspector/promises';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HotocrError } from '../errors.js';
import type { SchemaTypes } from './schemas.js';

/**
 * On-demand profiles of the server's main thread (the HTTP layer, decoding, routing; the
 * inference threads are not in them). One profile at a time: a second request while one
 * runs is refused with PROFILE_BUSY rather than queued.
 */
export class Profiler {
  #busy = false;

  async #exclusive<T>(work: (session: Session) => Promise<T>): Promise<T> {
    if (this.#busy)
      throw new HotocrError('PROFILE_BUSY', 'A profile is already being taken; try again when it ends.');
    this.#busy = true;
    const session = new Session();
    session.connect();
    try {
      return await work(session);
    } finally {
      session.disconnect();
      this.#busy = false;
    }
  }

  /** A CPU profile over `seconds`, as the JSON of a .cpuprofile file (Chrome DevTools, speedscope). */
  cpu(seconds: number, signal?: AbortSignal): Promise<string> {
    return this.#exclusive(async (session) => {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      const { profile } = await session.post('Profiler.stop');
      await session.post('Profiler.disable');
      return JSON.stringify(profile);
    });
  }

  /**
   * A heap snapshot (a .heapsnapshot file). Taking it pauses the main thread for a moment
   * proportional to the heap, and holds the snapshot's text in memory while it is sent.
   */
  heap(): Promise<Readable> {
    return this.#exclusive(async (session) => {
      const chunks: string[] = [];
      session.on('HeapProfiler.addHeapSnapshotChunk', (m) => {
        chunks.push(m.params.chunk);
      });
      await session.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
      return Readable.from(chunks);
    });
  }
}

export interface ProfilingRouteOptions {
  /** The admin token check every profiling route runs first. */
  readonly admin: (request: FastifyRequest) => Promise<void>;
}

/** On-demand CPU profiles and heap snapshots of the main thread, for admins. */
export async function profilingRoutes(app: FastifyInstance, options: ProfilingRouteOptions): Promise<void> {
  const { admin } = options;
  const profiler = new Profiler();
  // Request types come from the route schemas.
  const typed = app.withTypeProvider<SchemaTypes>();
  typed.post(
    '/v1/admin/profile/cpu',
    {
      onRequest: admin,
      schema: {
        summary: 'A CPU profile of the main thread over N seconds (.cpuprofile)',
        tags: ['admin'],
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { seconds: { type: 'number', minimum: 0.1, maximum: 120, default: 10 } },
        },
      },
    },
    async (request, reply) => {
      const { seconds } = request.query;
      const controller = new AbortController();
      reply.raw.once('close', () => controller.abort());
      const profile = await profiler.cpu(seconds, controller.signal);
      void reply
        .header('content-type', 'application/json')
        .header('content-disposition', `attachment; filename="hotocr-${Date.now()}.cpuprofile"`);
      return profile;
    },
  );
  app.post(
    '/v1/admin/profile/heap',
    {
      onRequest: admin,
      schema: {
        summary: 'A heap snapshot of the main thread (.heapsnapshot)',
        tags: ['admin'],
        security: [{ bearer: [] }],
      },
    },
    async (_request, reply) => {
      const snapshot = await profiler.heap();
      void reply
        .header('content-type', 'application/json')
        .header('content-disposition', `attachment; filename="hotocr-${Date.now()}.heapsnapshot"`);
      return reply.send(snapshot);
    },
  );
}
