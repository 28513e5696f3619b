// test-needs: model, registry
/**
 * The fleet against a real OCI registry (Debian's docker-registry, CNCF Distribution)
 * started on loopback: push and pull, three replicas following one repository with the
 * registry's notifications pointed at them, a push reaching all three under load, a
 * tampered artifact refused by all three, the registry stopped and started again.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { readServeConfig } from '../src/config.js';
import { OciClient, parseReference } from '../src/oci/index.js';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { type RunningServer, startServer } from '../src/server/index.js';
import { renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const work = tempDir();
const SECRET = 'test-webhook-secret-0123456789abcdef';
let registryPort: number;
let registryProcess: ChildProcess | undefined;
const replicas: RunningServer[] = [];
const replicaPorts: number[] = [];
let key: { privateKeyPath: string; publicKeyPath: string };
let page: Buffer;

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });

const repo = () => `127.0.0.1:${registryPort}/models/ppocr`;

async function startRegistry(): Promise<void> {
  // Notifications go to one replica only, as to a Service: it passes them on to its peers.
  const endpoints = replicaPorts
    .slice(0, 1)
    .map(
      (port, i) => `    - name: replica-${i}
      url: http://127.0.0.1:${port}/v1/hooks/registry
      headers:
        Authorization: [Bearer ${SECRET}]
      timeout: 2s
      threshold: 3
      backoff: 1s`,
    )
    .join('\n');
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
  addr: 127.0.0.1:${registryPort}
  secret: fleet-test-http-secret
notifications:
  endpoints:
${endpoints}
`,
  );
  registryProcess = spawn('docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${registryPort}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('docker-registry did not start');
}

async function stopRegistry(): Promise<void> {
  const p = registryProcess;
  registryProcess = undefined;
  if (!p || p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await exited;
}

/** A package of the bundled graphs under `version`, signed with the fleet's key. */
async function packageOf(version: string): Promise<string> {
  const out = join(work, `ppocr-${version}.zip`);
  await pack(await writeBundledSource(join(work, `src-${version}`), version), {
    signer: await keyFileSigner(key.privateKeyPath),
    out,
  });
  return out;
}

async function push(path: string, tag: string): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, 'push', path, `${repo()}:${tag}`]);
  return stdout.trim();
}

interface SelfBody {
  models: Record<string, { version: string; sha256: string }>;
  registry?: {
    digest?: string;
    lastRefused?: { digest: string; code: string };
    lastError?: { code: string };
  };
}

async function self(i: number): Promise<SelfBody> {
  return (await (await fetch(`${replicas[i]!.url}/v1/fleet/self`)).json()) as SelfBody;
}

/** Waits until every replica says `check`; returns how long that took. */
async function allReplicas(check: (s: SelfBody) => boolean, what: string, limitMs = 90_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    const states = await Promise.all(replicas.map((_, i) => self(i)));
    if (states.every(check)) return performance.now() - started;
    if (performance.now() - started > limitMs)
      throw new Error(`not every replica ${what} within ${limitMs} ms: ${JSON.stringify(states)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  key = await keygen({ type: 'ed25519', out: join(work, 'key') });
  await writeFile(join(work, 'secret'), SECRET);
  page = await renderText(['Fleet 3']);
  registryPort = await freePort();
  for (let i = 0; i < 3; i++) replicaPorts.push(await freePort());
  const first = await packageOf('4.0.0');
  for (let i = 0; i < 3; i++) {
    const peers = replicaPorts.filter((_, k) => k !== i).map((p) => `http://127.0.0.1:${p}`);
    replicas.push(
      await startServer(
        readServeConfig(
          {
            port: String(replicaPorts[i]),
            host: '127.0.0.1',
            data: join(work, `replica-${i}`),
            model: first,
            trust: key.publicKeyPath,
            registry: `127.0.0.1:${registryPort}/models/ppocr`,
            // Slow polling: what makes them look at once is the webhook, passed from replica to replica.
            registryPollMs: '60000',
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
  await startRegistry();
});

after(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  await stopRegistry();
});

describe('packages in an OCI registry', () => {
  test('push and pull round-trip byte for byte; the artifact has its own media type and annotations', async () => {
    const path = await packageOf('3.9.0');
    const digest = await push(path, 'roundtrip');
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const out = join(work, 'pulled.zip');
    const { stdout } = await run(process.execPath, [CLI, 'pull', `${repo()}@${digest}`, '--out', out]);
    assert.equal(stdout.trim(), digest);
    assert.ok((await readFile(out)).equals(await readFile(path)));
    const { manifest } = await new OciClient().manifest(parseReference(`${repo()}:roundtrip`));
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0]!.mediaType, 'application/vnd.hotocr.package.v1+zip');
    assert.equal(manifest.annotations?.['dev.hotocr.package.version'], '3.9.0');
    // A reference without a registry host, and one to nothing, are clear errors.
    const bad = await run(process.execPath, [CLI, 'pull', 'models/ppocr:1.0.0', '--out', out]).catch(
      (e) => e,
    );
    assert.match(bad.stderr, /REFERENCE_INVALID/);
    const missing = await run(process.execPath, [CLI, 'pull', `${repo()}:9.9.9`, '--out', out]).catch(
      (e) => e,
    );
    assert.match(missing.stderr, /ARTIFACT_NOT_FOUND/);
  });

  test('a push reaches all three replicas under load with no failed request (one notified, two told by it); the fleet view agrees', async () => {
    let stop = false;
    const failures: string[] = [];
    let requests = 0;
    const load = async (i: number) => {
      while (!stop) {
        const res = await fetch(`${replicas[i]!.url}/v1/ocr`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: page,
        }).catch((e: Error) => e);
        requests++;
        if (res instanceof Error) failures.push(`replica ${i}: ${res.message}`);
        else {
          await res.arrayBuffer();
          if (res.status !== 200) failures.push(`replica ${i}: ${res.status}`);
        }
      }
    };
    const clients = [0, 1, 2].map(load);
    let ms: number;
    try {
      await push(await packageOf('4.1.0'), '4.1.0');
      ms = await allReplicas((s) => s.models.ppocr?.version === '4.1.0', 'serves 4.1.0');
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    console.log(
      `fleet: a push reached all 3 replicas in ${Math.round(ms)} ms, under load (${requests} requests, ${failures.length} failed)`,
    );
    assert.deepEqual(failures, []);
    const fleet = (await (await fetch(`${replicas[0]!.url}/v1/fleet`)).json()) as {
      agree: boolean;
      replicas: { reachable: boolean }[];
      models: Record<string, { version: string; replicas: number }[]>;
    };
    assert.equal(fleet.replicas.length, 3);
    assert.equal(fleet.agree, true);
    assert.deepEqual(
      fleet.models.ppocr?.map((m) => [m.version, m.replicas]),
      [['4.1.0', 3]],
    );
  });

  test('a tampered artifact is refused by all three with its code; they keep serving what they had', async () => {
    const path = await packageOf('4.2.0');
    const bytes = await readFile(path);
    const at = bytes.indexOf(Buffer.from('rec.onnx')) + 4000;
    bytes[at] = bytes[at]! ^ 0xff;
    await writeFile(path, bytes);
    const digest = await push(path, '4.2.0');
    await allReplicas((s) => s.registry?.lastRefused?.digest === digest, 'refused the tampered artifact');
    for (let i = 0; i < 3; i++) {
      const s = await self(i);
      assert.equal(s.registry?.lastRefused?.code, 'CHECKSUM_MISMATCH');
      assert.equal(s.models.ppocr?.version, '4.1.0');
    }
  });

  test('the registry stopped: replicas keep serving; started again: they catch up with the next push', async () => {
    await stopRegistry();
    // Poked (as a notification would), every replica asks the registry and finds it down.
    const poke = await fetch(`${replicas[0]!.url}/v1/hooks/registry`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}` },
    });
    assert.equal(poke.status, 202);
    await allReplicas(
      (s) => s.registry?.lastError?.code === 'REGISTRY_UNREACHABLE',
      'noticed the registry is down',
    );
    for (const r of replicas) {
      const res = await fetch(`${r.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-model-version'), 'ppocr/4.1.0');
    }
    await startRegistry();
    await push(await packageOf('4.3.0'), '4.3.0');
    const ms = await allReplicas((s) => s.models.ppocr?.version === '4.3.0', 'caught up to 4.3.0');
    console.log(`fleet: after the registry came back, a push reached all 3 replicas in ${Math.round(ms)} ms`);
  });

  test('the webhook needs the shared secret', async () => {
    const url = `${replicas[0]!.url}/v1/hooks/registry`;
    const type = { 'content-type': 'application/vnd.docker.distribution.events.v1+json' };
    assert.equal((await fetch(url, { method: 'POST', headers: type, body: '{}' })).status, 401);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { ...type, authorization: 'Bearer wrong-secret-0123456789' },
      body: '{}',
    });
    assert.equal(wrong.status, 403);
    const right = await fetch(url, {
      method: 'POST',
      headers: { ...type, authorization: `Bearer ${SECRET}` },
      body: '{"events":[]}',
    });
    assert.equal(right.status, 202);
  });
});
