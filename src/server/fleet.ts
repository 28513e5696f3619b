import { randomUUID } from 'node:crypto';
import { resolve4 } from 'node:dns/promises';
import type { FastifyInstance } from 'fastify';
import { messageOf } from '../errors.js';
import type { Registry } from '../registry/index.js';
import type { RegistrySourceStatus } from '../sources/registry-source.js';
import { webhookGuard } from './auth.js';
import { errors } from './schemas.js';

export interface FleetOptions {
  readonly registry: Registry;
  /** The registry source, when the server follows one: poked by its webhook, shown in the fleet view. */
  readonly source?: { poke(): void; readonly status: RegistrySourceStatus };
  /** The shared secret the registry's notifications carry as a bearer token. */
  readonly webhookSecret?: string;
  /** Other replicas: base URLs, and/or `host:port` of a headless Service whose A records are the pods. */
  readonly peers?: readonly string[];
  readonly peersDns?: string;
}

/** What one replica says of itself. */
export interface ReplicaSummary {
  readonly id: string;
  readonly ready: boolean;
  /** The active version of each model, with the package's SHA-256. */
  readonly models: Record<string, { version: string; sha256: string }>;
  readonly registry?: RegistrySourceStatus;
}

/** Marks a webhook call passed on by another replica, so it is not passed on again. */
const FORWARDED = 'x-hotocr-forwarded-by';

function summary(id: string, options: FleetOptions): ReplicaSummary {
  const models: Record<string, { version: string; sha256: string }> = {};
  for (const v of options.registry.versions())
    if (v.state === 'active') models[v.name] = { version: v.version, sha256: v.sha256 };
  return {
    id,
    ready: Object.keys(models).length > 0,
    models,
    ...(options.source ? { registry: options.source.status } : {}),
  };
}

async function peerUrls(options: FleetOptions): Promise<string[]> {
  const urls = [...(options.peers ?? [])].map((u) => u.replace(/\/+$/, ''));
  if (options.peersDns) {
    const [host, port] = options.peersDns.split(':');
    const ips = await resolve4(host!).catch(() => [] as string[]);
    urls.push(...ips.map((ip) => `http://${ip}:${port ?? '8080'}`));
  }
  return [...new Set(urls)];
}

/**
 * The fleet: `POST /v1/hooks/registry` (the registry's notifications, which make the
 * registry source look at once), `GET /v1/fleet/self` (this replica), and `GET /v1/fleet`
 * (every replica this one knows, and whether they serve the same bytes).
 */
export async function fleetRoutes(app: FastifyInstance, options: FleetOptions): Promise<void> {
  // Tells this replica from the others when a peer list (or DNS) includes itself.
  const id = randomUUID();
  const guard = webhookGuard(options.source ? options.webhookSecret : undefined);
  app.addContentTypeParser(
    'application/vnd.docker.distribution.events.v1+json',
    { parseAs: 'buffer', bodyLimit: 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );
  app.post(
    '/v1/hooks/registry',
    {
      onRequest: guard,
      schema: {
        summary: "The registry's notification webhook: the followed repository is looked at now",
        description:
          "Authorization: Bearer <webhook secret>. The body (the registry's event envelope) is not trusted for anything: the source asks the registry itself, and verifies what it pulls.",
        tags: ['fleet'],
        security: [{ bearer: [] }],
        response: { 202: { type: 'object', properties: { accepted: { type: 'boolean' } } }, ...errors },
      },
    },
    async (request, reply) => {
      options.source?.poke();
      // A registry usually notifies one address (the Service): pass the news to the other
      // replicas once, so every one looks at once rather than at its next poll.
      if (request.headers[FORWARDED] === undefined && options.webhookSecret) {
        const secret = options.webhookSecret;
        void peerUrls(options).then((urls) =>
          Promise.allSettled(
            urls.map((url) =>
              fetch(`${url}/v1/hooks/registry`, {
                method: 'POST',
                headers: { authorization: `Bearer ${secret}`, [FORWARDED]: id },
                signal: AbortSignal.timeout(2000),
              }).then((res) => res.arrayBuffer()),
            ),
          ),
        );
      }
      return reply.status(202).send({ accepted: true });
    },
  );
  app.get(
    '/v1/fleet/self',
    { schema: { summary: 'This replica: its active versions and registry source', tags: ['fleet'] } },
    async () => summary(id, options),
  );
  app.get(
    '/v1/fleet',
    {
      schema: {
        summary: 'Every replica this one knows (--peers, --peers-dns) and whether they serve the same bytes',
        tags: ['fleet'],
      },
    },
    async () => {
      const self = summary(id, options);
      const peers = await Promise.all(
        (await peerUrls(options)).map(async (url) => {
          try {
            const res = await fetch(`${url}/v1/fleet/self`, { signal: AbortSignal.timeout(2000) });
            if (!res.ok) return { url, reachable: false, error: `HTTP ${res.status}` };
            return { url, reachable: true, ...((await res.json()) as ReplicaSummary) };
          } catch (error) {
            return { url, reachable: false, error: messageOf(error) };
          }
        }),
      );
      const replicas = [
        { url: null, self: true, reachable: true, ...self },
        ...peers.filter((p) => !('id' in p) || p.id !== self.id).map((p) => ({ self: false, ...p })),
      ];
      const reachable = replicas.filter((r): r is typeof r & ReplicaSummary => r.reachable && 'models' in r);
      const names = new Set(reachable.flatMap((r) => Object.keys(r.models)));
      const models = Object.fromEntries(
        [...names].map((name) => {
          const bySha = new Map<string, { version: string; replicas: number }>();
          for (const r of reachable) {
            const m = r.models[name];
            const key = m ? m.sha256 : 'none';
            const entry = bySha.get(key) ?? { version: m?.version ?? '(none)', replicas: 0 };
            entry.replicas++;
            bySha.set(key, entry);
          }
          return [name, [...bySha].map(([sha256, e]) => ({ sha256, ...e }))];
        }),
      );
      const agree =
        reachable.length === replicas.length &&
        Object.values(models).every((variants) => variants.length === 1);
      return { agree, replicas, models };
    },
  );
}
