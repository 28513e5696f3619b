import { randomUUID } from 'node:crypto';
import { resolve4 } from 'node:dns/promises';
import type { FastifyInstance } from 'fastify';
import semver from 'semver';
import { messageOf } from '../errors.js';
import { readLimited } from '../oci/index.js';
import type { Registry } from '../registry/index.js';
import type { RegistrySourceStatus } from '../sources/registry-source.js';
import { webhookGuard } from './auth.js';
import { errors } from './schemas.js';

export interface FleetOptions {
  readonly registry: Registry;
  /** The registry sources, one per model followed: notified by the webhook, shown in the fleet view. */
  readonly sources?: readonly {
    follows(repository: string): boolean;
    notified(): void;
    readonly status: RegistrySourceStatus;
  }[];
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
  /** The first registry source (as replicas of one followed repository reported it). */
  readonly registry?: RegistrySourceStatus;
  /** Every registry source, one per model followed. */
  readonly registries?: readonly RegistrySourceStatus[];
}

/** Marks a webhook call passed on by another replica, so it is not passed on again. */
const FORWARDED = 'x-hotocr-forwarded-by';
const EVENTS_TYPE = 'application/vnd.docker.distribution.events.v1+json';
/** The most read of a peer's answer: a summary is a few hundred bytes. */
const PEER_REPLY_LIMIT = 1024 * 1024;
/** A fan-out call that failed is tried once more after this. */
const FANOUT_RETRY_MS = 1000;

/**
 * Whether a registry's notification body holds a push of a manifest (a tag or a digest) to
 * a repository the source follows. The body decides only whether to look: what is pulled
 * is asked of the registry and verified, never taken from here.
 */
export function announcesPush(body: unknown, follows: (repository: string) => boolean): boolean {
  const events = (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) return false;
  return events.some((event: unknown) => {
    const e = event as {
      action?: unknown;
      target?: { repository?: unknown; mediaType?: unknown; tag?: unknown };
    };
    if (e?.action !== 'push' || typeof e.target?.repository !== 'string') return false;
    const manifest = typeof e.target.mediaType === 'string' && /manifest/i.test(e.target.mediaType);
    return (manifest || typeof e.target.tag === 'string') && follows(e.target.repository);
  });
}

/** A peer's summary, keeping only the fields a summary has, of the types it has them. */
function peerSummary(value: unknown): ReplicaSummary | undefined {
  const v = value as Partial<ReplicaSummary> | null;
  if (typeof v?.id !== 'string' || typeof v.ready !== 'boolean' || typeof v.models !== 'object' || !v.models)
    return undefined;
  const models: Record<string, { version: string; sha256: string }> = {};
  for (const [name, m] of Object.entries(v.models))
    if (typeof m?.version === 'string' && typeof m.sha256 === 'string')
      models[name] = { version: m.version, sha256: m.sha256 };
  return {
    id: v.id,
    ready: v.ready,
    models,
    ...(v.registry ? { registry: v.registry } : {}),
    ...(Array.isArray(v.registries) ? { registries: v.registries } : {}),
  };
}

function summary(id: string, options: FleetOptions): ReplicaSummary {
  const models: Record<string, { version: string; sha256: string }> = {};
  for (const v of options.registry.versions())
    if (v.state === 'active') models[v.name] = { version: v.version, sha256: v.sha256 };
  const sources = options.sources ?? [];
  return {
    id,
    ready: Object.keys(models).length > 0,
    models,
    ...(sources[0] ? { registry: sources[0].status } : {}),
    ...(sources.length > 0 ? { registries: sources.map((s) => s.status) } : {}),
  };
}

/**
 * How the reachable replicas stand on one model: the bytes each serves (`variants`), the
 * newest version any serves, and the replicas that serve an older one or none (`lagging`).
 */
export function agreement(
  name: string,
  reachable: readonly (ReplicaSummary & { url: string | null; self: boolean })[],
) {
  const bySha = new Map<string, { version: string | null; replicas: number }>();
  for (const r of reachable) {
    const m = r.models[name];
    const key = m ? m.sha256 : 'none';
    const entry = bySha.get(key) ?? { version: m?.version ?? null, replicas: 0 };
    entry.replicas++;
    bySha.set(key, entry);
  }
  const versions = reachable.flatMap((r) => (r.models[name] ? [r.models[name].version] : []));
  const newest = versions.filter((v) => semver.valid(v)).sort(semver.rcompare)[0] ?? null;
  const lagging = reachable
    .filter((r) => r.models[name]?.version !== newest)
    .map((r) => ({ id: r.id, url: r.url, self: r.self, version: r.models[name]?.version ?? null }));
  return {
    agree: bySha.size === 1,
    newest,
    variants: [...bySha].map(([sha256, e]) => ({ sha256, ...e })),
    lagging,
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
  const sources = options.sources ?? [];
  const guard = webhookGuard(sources.length > 0 ? options.webhookSecret : undefined);
  app.addContentTypeParser(EVENTS_TYPE, { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) =>
    done(null, body),
  );
  /** Passes a push on to a peer, once more after a moment if the first call fails. */
  const forward = async (url: string, secret: string, body: Buffer) => {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, FANOUT_RETRY_MS));
      try {
        const res = await fetch(`${url}/v1/hooks/registry`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': EVENTS_TYPE, [FORWARDED]: id },
          body,
          signal: AbortSignal.timeout(2000),
        });
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // tried again below, once
      }
    }
  };
  app.post(
    '/v1/hooks/registry',
    {
      onRequest: guard,
      schema: {
        summary: "The registry's notification webhook: a push to the followed repository is looked at now",
        description:
          "Authorization: Bearer <webhook secret>. The body (the registry's event envelope) decides only whether to look: only a push of a manifest to the followed repository makes the replica ask the registry (at most once a second) and pass the news to its peers. Nothing in it is trusted: the source asks the registry itself, and verifies what it pulls.",
        tags: ['fleet'],
        security: [{ bearer: [] }],
        response: {
          202: {
            type: 'object',
            properties: { accepted: { type: 'boolean' }, looking: { type: 'boolean' } },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let envelope: unknown;
      try {
        envelope = JSON.parse(body.toString('utf8'));
      } catch {
        envelope = undefined;
      }
      // Pulls (every replica's own look is one) and blob pushes are not news: answering them
      // with a look would make a pull, hence another notification, without end. Only the
      // sources whose repository the push names look.
      const told = sources.filter((source) => announcesPush(envelope, (r) => source.follows(r)));
      const looking = told.length > 0;
      if (looking) {
        for (const source of told) source.notified();
        // A registry usually notifies one address (the Service): pass the push on to the
        // other replicas once, so every one looks at once rather than at its next poll.
        if (request.headers[FORWARDED] === undefined && options.webhookSecret) {
          const secret = options.webhookSecret;
          void peerUrls(options).then((urls) =>
            Promise.allSettled(urls.map((url) => forward(url, secret, body))),
          );
        }
      }
      return reply.status(202).send({ accepted: true, looking });
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
            const res = await fetch(`${url}/v1/fleet/self`, {
              signal: AbortSignal.timeout(2000),
              redirect: 'manual',
            });
            if (!res.ok) {
              await res.body?.cancel();
              return { url, reachable: false, error: `HTTP ${res.status}` };
            }
            const bytes = await readLimited(res, PEER_REPLY_LIMIT, 'REQUEST_INVALID', "The peer's answer");
            const peer = peerSummary(JSON.parse(bytes.toString('utf8')));
            if (!peer) return { url, reachable: false, error: 'the answer is not a replica summary' };
            return { url, reachable: true, ...peer };
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
      const names = [...new Set(reachable.flatMap((r) => Object.keys(r.models)))].sort();
      const models = Object.fromEntries(names.map((name) => [name, agreement(name, reachable)]));
      const agree = reachable.length === replicas.length && Object.values(models).every((m) => m.agree);
      return { agree, replicas, models };
    },
  );
}
