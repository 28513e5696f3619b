import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { type RunningServer, startServer } from '../../src/app/index.js';
import { readServeConfig } from '../../src/config.js';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../../src/pack/index.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');
const SECRET = 'fleet-webhook-secret-0123456789abcdef';

export const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });

/** What a replica says of itself at GET /v1/fleet/self. */
export interface SelfBody {
  models: Record<string, { version: string; sha256: string }>;
  registry?: {
    digest?: string;
    lastRefused?: { digest: string; code: string };
    lastError?: { code: string };
  };
}

/** The body CNCF Distribution sends when a manifest is pushed to the repository. */
export const pushEvent = (tag: string, repository = 'models/ppocr') =>
  JSON.stringify({
    events: [
      {
        action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository, tag },
      },
    ],
  });

/**
 * Debian's docker-registry (CNCF Distribution) on loopback `port`, its data under `work`;
 * with `notify`, it sends every event to that URL with the secret as a bearer token.
 * Resolves once it answers.
 */
export async function startDockerRegistry(
  work: string,
  port: number,
  notify?: { url: string; secret: string },
): Promise<ChildProcess> {
  const notifications = notify
    ? `notifications:
  endpoints:
    - name: replica-0
      url: ${notify.url}
      headers:
        Authorization: [Bearer ${notify.secret}]
      timeout: 2s
      threshold: 3
      backoff: 1s
`
    : '';
  await writeFile(
    join(work, 'registry.yml'),
    `version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: ${join(work, 'registry-data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: fleet-test-http-secret
${notifications}`,
  );
  const child = spawn('docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  throw new Error('docker-registry did not start');
}

/**
 * A pass-through proxy to the registry on `registryPort` that counts the manifest requests
 * going through, in all and per repository.
 */
export async function countingProxy(registryPort: number): Promise<{
  port: number;
  counts: { count: number; byRepository: Record<string, number> };
  server: Server;
}> {
  const port = await freePort();
  const counts = { count: 0, byRepository: {} as Record<string, number> };
  const server = createHttpServer((req, res) => {
    const manifest = /^\/v2\/(.+)\/manifests\//.exec(req.url ?? '');
    if (manifest && (req.method === 'GET' || req.method === 'HEAD')) {
      counts.count++;
      counts.byRepository[manifest[1]!] = (counts.byRepository[manifest[1]!] ?? 0) + 1;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: registryPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    // The registry down: the connection fails, as it would without the proxy in between.
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, counts, server };
}

/**
 * A fleet on loopback: Debian's docker-registry (CNCF Distribution), notifying one replica
 * of every event (pulls included, the worst case), and `replicas` servers following its
 * repository models/ppocr through a proxy that counts manifest requests, each told of its
 * peers. Polling is once a day: what makes replicas look is the webhook.
 */
export class Fleet {
  readonly secret = SECRET;
  readonly replicas: RunningServer[] = [];
  /** Manifest requests the replicas made of the registry. */
  manifestRequests = { count: 0, byRepository: {} as Record<string, number> };
  #registryPort = 0;
  #registry: ChildProcess | undefined;
  #proxy: Server | undefined;
  #key: { privateKeyPath: string; publicKeyPath: string } | undefined;

  private constructor(readonly work: string) {}

  /** The repository, as pushed to (the registry itself, not the proxy). */
  get repository(): string {
    return `127.0.0.1:${this.#registryPort}/models/ppocr`;
  }

  static async start(work: string, replicas: number): Promise<Fleet> {
    const fleet = new Fleet(work);
    fleet.#key = await keygen({ type: 'ed25519', out: join(work, 'key') });
    await writeFile(join(work, 'secret'), SECRET);
    fleet.#registryPort = await freePort();
    const proxyPort = await fleet.#startProxy();
    const ports: number[] = [];
    for (let i = 0; i < replicas; i++) ports.push(await freePort());
    const first = await fleet.packageOf('4.0.0');
    for (let i = 0; i < replicas; i++) {
      const peers = ports.filter((_, k) => k !== i).map((p) => `http://127.0.0.1:${p}`);
      fleet.replicas.push(
        await startServer(
          readServeConfig(
            {
              port: String(ports[i]),
              host: '127.0.0.1',
              data: join(work, `replica-${i}`),
              model: first,
              trust: fleet.#key.publicKeyPath,
              registry: `127.0.0.1:${proxyPort}/models/ppocr`,
              registryPollMs: '86400000',
              registryWebhookSecretFile: join(work, 'secret'),
              peers: peers.join(','),
            },
            {},
          ),
          pino({ level: 'silent' }),
        ),
      );
    }
    // The replicas started before the registry: they serve their first version and keep asking.
    await fleet.startRegistry();
    return fleet;
  }

  /** A pass-through proxy to the registry that counts the manifest requests going through. */
  async #startProxy(): Promise<number> {
    const proxy = await countingProxy(this.#registryPort);
    this.#proxy = proxy.server;
    this.manifestRequests = proxy.counts;
    return proxy.port;
  }

  /** Starts the registry, its notifications pointed at the first replica alone, as at a Service. */
  async startRegistry(): Promise<void> {
    const first = new URL(this.replicas[0]!.url).port;
    this.#registry = await startDockerRegistry(this.work, this.#registryPort, {
      url: `http://127.0.0.1:${first}/v1/hooks/registry`,
      secret: SECRET,
    });
  }

  async stopRegistry(): Promise<void> {
    const p = this.#registry;
    this.#registry = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  /** A package of the bundled graphs under `version`, signed with the fleet's key. */
  async packageOf(version: string): Promise<string> {
    const out = join(this.work, `ppocr-${version}.zip`);
    await pack(await writeBundledSource(join(this.work, `src-${version}`), version), {
      signer: await keyFileSigner(this.#key!.privateKeyPath),
      out,
    });
    return out;
  }

  /** `hotocr push` of a package to a tag of the repository; its digest. */
  async push(path: string, tag: string): Promise<string> {
    const { stdout } = await run(process.execPath, [CLI, 'push', path, `${this.repository}:${tag}`]);
    return stdout.trim();
  }

  async self(i: number): Promise<SelfBody> {
    return (await (await fetch(`${this.replicas[i]!.url}/v1/fleet/self`)).json()) as SelfBody;
  }

  /** Waits until every replica says `check`; returns how long that took, in ms. */
  async all(check: (s: SelfBody) => boolean, what: string, limitMs = 90_000): Promise<number> {
    const started = performance.now();
    for (;;) {
      const states = await Promise.all(this.replicas.map((_, i) => this.self(i)));
      if (states.every(check)) return performance.now() - started;
      if (performance.now() - started > limitMs)
        throw new Error(`not every replica ${what} within ${limitMs} ms: ${JSON.stringify(states)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
    await this.stopRegistry();
    await new Promise<void>((r) => (this.#proxy ? this.#proxy.close(() => r()) : r()));
  }
}
