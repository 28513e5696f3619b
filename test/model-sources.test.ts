// test-needs: model, registry
/**
 * A source per model, a fleet per model, and memory you can plan, against a real registry
 * (Debian's docker-registry on loopback): one server follows two repositories, models/zh and
 * models/en, one per model. A push to one swaps that model only; a notification naming one
 * repository looks only there; a package of another name pulled from a model's repository is
 * refused; --max-models holds at its limit and frees a place when a model is retired; each
 * version's memory is reported, and a version whose graphs another loaded version opened
 * shows them shared. A second replica that is not told of a push lags, and the fleet view
 * says on which model.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { bundledManifest, keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { countingProxy, freePort, pushEvent, startDockerRegistry } from './helpers/fleet.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const work = tempDir();
const TOKEN = 'model-sources-admin-token-0123456789';
const SECRET = 'model-sources-webhook-secret-0123456789';

let keys: { privateKeyPath: string; publicKeyPath: string };
let registryPort: number;
let registry: ChildProcess;
let proxy: { port: number; counts: { count: number; byRepository: Record<string, number> }; server: Server };
let server: RunningServer;
let lagging: RunningServer;

/** A package of the bundled graphs as model `name` at `version`, signed by the test's key. */
async function packageOf(name: string, version: string): Promise<string> {
  const src = await writeBundledSource(join(work, `src-${name}-${version}`), version);
  await writeFile(join(src, 'config.json'), JSON.stringify({ ...bundledManifest(version), name }, null, 2));
  const out = join(work, `${name}-${version}.zip`);
  await pack(src, { signer: await keyFileSigner(keys.privateKeyPath), out });
  return out;
}

/** `hotocr push` of a package of `name` at `version` to `repository:tag`. */
async function push(name: string, version: string, repository: string, tag = version): Promise<void> {
  await run(process.execPath, [
    CLI,
    'push',
    await packageOf(name, version),
    `127.0.0.1:${registryPort}/${repository}:${tag}`,
  ]);
}

/** The registry's notification of a push to `repository`, as it would send it. */
async function notify(target: RunningServer, repository: string, tag: string): Promise<{ looking: boolean }> {
  const res = await fetch(`${target.url}/v1/hooks/registry`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${SECRET}`,
      'content-type': 'application/vnd.docker.distribution.events.v1+json',
    },
    body: pushEvent(tag, repository),
  });
  assert.equal(res.status, 202);
  return (await res.json()) as { looking: boolean };
}

const activeOf = (s: RunningServer, name: string) => s.registry.active(name)?.version;

type SelfBody = {
  registries?: { following: string; model?: string; lastRefused?: { code: string } }[];
};

before(async () => {
  keys = await keygen({ type: 'ed25519', out: join(work, 'key') });
  await writeFile(join(work, 'secret'), SECRET);
  await writeFile(join(work, 'token'), TOKEN);
  registryPort = await freePort();
  registry = await startDockerRegistry(work, registryPort);
  proxy = await countingProxy(registryPort);
  await push('zh', '1.0.0', 'models/zh');
  await push('en', '1.0.0', 'models/en');
  const via = `127.0.0.1:${proxy.port}`;
  // A watched folder at DATA/incoming, with a file of the operator's in it.
  await mkdir(join(work, 'server', 'incoming'), { recursive: true });
  await writeFile(join(work, 'server', 'incoming', 'notes.txt'), 'the operator keeps this here');
  // A second replica, following zh alone, told of nothing (no webhook secret): it lags.
  lagging = await startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: join(work, 'lagging'),
        trust: keys.publicKeyPath,
        registry: [`${via}/models/zh`],
        registryPollMs: '86400000',
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
  server = await startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: join(work, 'server'),
        trust: keys.publicKeyPath,
        registry: [`${via}/models/zh`, `en=${via}/models/en`],
        registryPollMs: '86400000',
        registryWebhookSecretFile: join(work, 'secret'),
        adminTokenFile: join(work, 'token'),
        models: join(work, 'server', 'incoming'),
        peers: lagging.url,
        maxModels: '2',
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
  // Each source looks once at start: both models arrive.
  await until(
    () => activeOf(server, 'zh') === '1.0.0' && activeOf(server, 'en') === '1.0.0',
    'zh and en',
    60_000,
  );
  await until(() => activeOf(lagging, 'zh') === '1.0.0', 'zh on the second replica', 60_000);
});

after(async () => {
  await server?.close();
  await lagging?.close();
  registry?.kill('SIGTERM');
  await new Promise<void>((r) => (proxy ? proxy.server.close(() => r()) : r()));
});

async function call(method: string, path: string, body?: Buffer) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body ? { 'content-type': 'application/zip' } : {}),
    },
    ...(body ? { body } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string } },
  };
}

describe('a repository per model', () => {
  test("pulls land in a folder of their own: a watched folder at DATA/incoming keeps the operator's files", async () => {
    assert.equal(
      await readFile(join(work, 'server', 'incoming', 'notes.txt'), 'utf8'),
      'the operator keeps this here',
    );
  });

  test('a push to one repository swaps that model only, and its notification looks only there', async () => {
    await push('zh', '1.1.0', 'models/zh');
    const before = { ...proxy.counts.byRepository };
    assert.equal((await notify(server, 'models/zh', '1.1.0')).looking, true);
    await until(() => activeOf(server, 'zh') === '1.1.0', 'zh 1.1.0', 60_000);
    assert.equal(activeOf(server, 'en'), '1.0.0');
    assert.ok((proxy.counts.byRepository['models/zh'] ?? 0) > (before['models/zh'] ?? 0), 'zh looked at');
    assert.equal(proxy.counts.byRepository['models/en'] ?? 0, before['models/en'] ?? 0, 'en not looked at');
    // A push to a repository no source follows is not news.
    assert.equal((await notify(server, 'models/ja', '1.0.0')).looking, false);
  });

  test("a package of another model pushed to a model's repository is refused with MODEL_NAME_MISMATCH", async () => {
    await push('en', '2.0.0', 'models/zh');
    await notify(server, 'models/zh', '2.0.0');
    const zh = async () =>
      ((await (await fetch(`${server.url}/v1/fleet/self`)).json()) as SelfBody).registries?.find(
        (r) => r.model === 'zh',
      );
    await until(async () => (await zh())?.lastRefused?.code === 'MODEL_NAME_MISMATCH', 'the refusal', 60_000);
    assert.equal(activeOf(server, 'zh'), '1.1.0');
    assert.equal(activeOf(server, 'en'), '1.0.0');
    const self = (await (await fetch(`${server.url}/v1/fleet/self`)).json()) as SelfBody;
    assert.deepEqual(
      self.registries?.map((r) => r.model),
      ['zh', 'en'],
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^hotocr_registry_up\{name="zh",repository="[^"]*models\/zh"\} 1$/m);
    assert.match(metrics, /^hotocr_package_rejections_total\{reason="MODEL_NAME_MISMATCH"\} 1$/m);
  });

  test('--max-models: a new name past the limit is MODEL_LIMIT; a new version of a served one is not; retiring frees a place', async () => {
    const receipts = await readFile(await packageOf('receipts', '1.0.0'));
    const refused = await call('POST', '/v1/models', receipts);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error?.code, 'MODEL_LIMIT');
    assert.match(JSON.stringify(refused.body), /en, zh/);
    const newer = await call('POST', '/v1/models', await readFile(await packageOf('en', '1.2.0')));
    assert.equal(newer.status, 201, JSON.stringify(newer.body));
    assert.equal(activeOf(server, 'en'), '1.2.0');
    assert.equal((await call('DELETE', '/v1/models/en')).status, 200);
    const taken = await call('POST', '/v1/models', receipts);
    assert.equal(taken.status, 201, JSON.stringify(taken.body));
    assert.equal(activeOf(server, 'zh'), '1.1.0');
  });

  test("each loaded version's memory is reported; a version sharing another's graphs shows them shared", async () => {
    const models = (await call('GET', '/v1/models')).body as {
      memory: { rss: number };
      models: {
        name: string;
        versions: {
          version: string;
          state: string;
          memory?: { loadBytes: number; sharedSessions: number };
        }[];
      }[];
    };
    const loaded = models.models.flatMap((m) =>
      m.versions
        .filter((v) => v.state === 'active' || v.state === 'ready')
        .map((v) => ({ name: m.name, ...v })),
    );
    assert.ok(loaded.length >= 2, JSON.stringify(loaded));
    for (const v of loaded) {
      assert.ok(v.memory && v.memory.loadBytes >= 0, JSON.stringify(v));
      // Each version loaded now arrived while another with the same graphs was loaded: it shares them.
      assert.equal(v.memory.sharedSessions, 3, `${v.name} ${v.version} shares the graphs`);
    }
    assert.ok(models.memory.rss > 0);
    const total = loaded.reduce((sum, v) => sum + v.memory!.loadBytes, 0);
    assert.ok(
      total <= models.memory.rss,
      `${total} bytes of versions within a process of ${models.memory.rss}`,
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const v of loaded) {
      const labels = `\\{name="${v.name}",version="${v.version.replaceAll('.', '\\.')}"\\}`;
      assert.match(metrics, new RegExp(`^hotocr_model_memory_bytes${labels} ${v.memory!.loadBytes}$`, 'm'));
      assert.match(metrics, new RegExp(`^hotocr_model_shared_sessions${labels} 3$`, 'm'));
    }
  });

  test('the fleet view says, per model, whether the replicas agree and which lag', async () => {
    const view = (await (await fetch(`${server.url}/v1/fleet`)).json()) as {
      agree: boolean;
      models: Record<
        string,
        {
          agree: boolean;
          newest: string;
          lagging: { id: string; self: boolean; url: string | null; version: string | null }[];
        }
      >;
    };
    assert.equal(view.agree, false);
    assert.equal(view.models.zh?.agree, false);
    assert.equal(view.models.zh?.newest, '1.1.0');
    assert.deepEqual(view.models.zh?.lagging, [
      { id: view.models.zh?.lagging[0]?.id, url: lagging.url, self: false, version: '1.0.0' },
    ]);
    // receipts is served here alone: the other replica lags on it with nothing.
    assert.deepEqual(
      view.models.receipts?.lagging.map((l) => [l.url, l.version]),
      [[lagging.url, null]],
    );
  });
});
