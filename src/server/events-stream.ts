import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';

/** Anything the stream carries: a JSON object with at least a type and a time. */
export interface StreamEvent {
  readonly type: string;
  readonly ts: string;
}

export interface EventStreamOptions {
  /** Subscribes to every event; returns the unsubscribe function. */
  readonly subscribe: (listener: (event: StreamEvent) => void) => () => void;
  /** The current state, sent first to each new client. */
  readonly snapshot: () => StreamEvent;
  /** Clients connected at once; one more is refused (close code 1013). */
  readonly maxClients?: number;
  /** Bytes a client may have unsent before it is dropped as too slow. */
  readonly maxBufferedBytes?: number;
  /** How often clients are pinged; one that missed the previous ping is dropped. */
  readonly heartbeatMs?: number;
}

/**
 * GET /v1/events: a WebSocket carrying every event as one JSON text message, after a
 * `snapshot` of the current state. The server never buffers without bound: a client whose
 * unsent data passes `maxBufferedBytes` is dropped (close code 1008), and one that stops
 * answering pings is dropped at the next heartbeat.
 */
export async function eventStream(app: FastifyInstance, options: EventStreamOptions): Promise<void> {
  const maxClients = options.maxClients ?? 1000;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const clients = new Set<WebSocket>();

  const alive = new WeakSet<WebSocket>();
  const heartbeat = setInterval(() => {
    for (const socket of clients) {
      if (!alive.has(socket)) {
        socket.terminate();
        continue;
      }
      alive.delete(socket);
      socket.ping();
    }
  }, options.heartbeatMs ?? 30_000);
  heartbeat.unref();

  // Before the plugin's own close hook, so clients hear 1001 (going away) and a reason.
  app.addHook('preClose', (done) => {
    clearInterval(heartbeat);
    for (const socket of clients) {
      socket.close(1001, 'server stopping');
      setTimeout(() => socket.terminate(), 1000).unref();
    }
    done();
  });
  await app.register(websocket, { options: { maxPayload: 1024 } });

  app.route({
    method: 'GET',
    url: '/v1/events',
    schema: {
      summary: 'Live events (WebSocket): a snapshot, then every registry and routing event as JSON',
      description:
        'Each message is one JSON object {type, ts, name, version, ...}; the first is {type: "snapshot", models, routing}. A plain GET (no upgrade) is answered 426.',
      tags: ['events'],
    },
    handler: async (_request, reply) =>
      reply
        .status(426)
        .header('upgrade', 'websocket')
        .send({
          error: {
            code: 'UPGRADE_REQUIRED',
            message: 'GET /v1/events is a WebSocket: connect with a WebSocket client.',
          },
        }),
    wsHandler: (socket, request) => {
      if (clients.size >= maxClients) {
        socket.close(1013, 'too many event clients; try again later');
        return;
      }
      clients.add(socket);
      alive.add(socket);
      socket.on('pong', () => alive.add(socket));
      const send = (event: StreamEvent) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > maxBuffered) {
          request.log.warn({ buffered: socket.bufferedAmount }, 'event client too slow; dropped');
          socket.close(1008, 'too slow: events were not being read');
          setTimeout(() => socket.terminate(), 1000).unref();
          return;
        }
        socket.send(JSON.stringify(event));
      };
      const unsubscribe = options.subscribe(send);
      socket.on('close', () => {
        unsubscribe();
        clients.delete(socket);
      });
      socket.on('error', () => socket.terminate());
      send(options.snapshot());
    },
  });
}
