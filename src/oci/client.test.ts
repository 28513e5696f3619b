/**
 * The registry client's credentials: the token-service flow (401 with a Bearer challenge,
 * a token fetched with Docker-config basic credentials), plain basic auth, a token from the
 * environment, and a clear REGISTRY_AUTH without credentials. The peer is a small registry
 * written here that insists on each scheme, since the loopback docker-registry of the fleet
 * tests runs without auth.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import type { HotocrError } from '../errors.js';
import { OciClient, parseReference } from './index.js';

const work = tempDir();
const USER = 'ci-robot';
const PASSWORD = 's3cret-pass';
const TOKEN = 'issued-token-42';
const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A registry that wants `scheme` on every /v2 request: a token from its token service, or basic credentials. */
async function fakeRegistry(scheme: 'token' | 'basic'): Promise<{ host: string; seen: string[] }> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, Buffer>();
  const seen: string[] = [];
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    const { port } = server.address() as AddressInfo;
    if (url.pathname === '/token') {
      seen.push(`token ${url.searchParams.get('scope')}`);
      if (req.headers.authorization !== basic) return void res.writeHead(401).end();
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: TOKEN }));
    }
    const wanted = scheme === 'token' ? `Bearer ${TOKEN}` : basic;
    if (req.headers.authorization !== wanted) {
      seen.push(`401 ${req.method} ${url.pathname}`);
      const challenge =
        scheme === 'token'
          ? `Bearer realm="http://127.0.0.1:${port}/token",service="fake",scope="repository:models/ppocr:pull,push"`
          : 'Basic realm="fake"';
      await body(req);
      return void res.writeHead(401, { 'www-authenticate': challenge }).end();
    }
    const m = /^\/v2\/models\/ppocr\/(blobs|manifests)\/(.+)$/.exec(url.pathname);
    if (req.method === 'POST' && url.pathname === '/v2/models/ppocr/blobs/uploads/')
      return void res.writeHead(202, { location: '/v2/models/ppocr/blobs/uploads/u1' }).end();
    if (req.method === 'PUT' && url.pathname === '/v2/models/ppocr/blobs/uploads/u1') {
      const data = await body(req);
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      if (digest !== url.searchParams.get('digest')) return void res.writeHead(400).end();
      blobs.set(digest, data);
      return void res.writeHead(201).end();
    }
    if (m && m[1] === 'blobs') {
      const data = blobs.get(m[2]!);
      if (!data) return void res.writeHead(404).end();
      return void res
        .writeHead(200, { 'content-length': data.length })
        .end(req.method === 'HEAD' ? undefined : data);
    }
    if (m && req.method === 'PUT') {
      const data = await body(req);
      manifests.set(m[2]!, data);
      manifests.set(`sha256:${createHash('sha256').update(data).digest('hex')}`, data);
      return void res.writeHead(201).end();
    }
    if (m) {
      const data = manifests.get(m[2]!);
      if (!data) return void res.writeHead(404).end();
      return void res
        .writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })
        .end(data);
    }
    res.writeHead(404).end();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function dockerConfig(host: string, password = PASSWORD): Promise<string> {
  const path = join(work, `docker-${host.replace(/\W/g, '-')}-${password.length}.json`);
  const auth = Buffer.from(`${USER}:${password}`).toString('base64');
  await writeFile(path, JSON.stringify({ auths: { [`https://${host}`]: { auth } } }));
  return path;
}

const artifact = Buffer.from('PK\u0005\u0006 not really a package, the registry does not care');

async function roundTrip(client: OciClient, host: string): Promise<void> {
  const pkg = join(work, 'artifact.zip');
  await writeFile(pkg, artifact);
  const ref = parseReference(`${host}/models/ppocr:1.0.0`);
  const { digest } = await client.push(pkg, ref, { name: 'ppocr', version: '1.0.0', file: 'artifact.zip' });
  const out = join(work, 'back.zip');
  await client.pull({ ...ref, digest }, out, 1 << 20);
  assert.ok((await readFile(out)).equals(artifact));
}

test('the token-service flow: a 401 Bearer challenge, a token fetched with Docker-config credentials', async () => {
  const { host, seen } = await fakeRegistry('token');
  await roundTrip(new OciClient({ dockerConfig: await dockerConfig(host) }), host);
  assert.ok(seen.includes('token repository:models/ppocr:pull,push'));
  assert.equal(seen.filter((s) => s.startsWith('token')).length, 1, 'the token is fetched once and reused');
});

test('basic credentials from the Docker config file', async () => {
  const { host } = await fakeRegistry('basic');
  await roundTrip(new OciClient({ dockerConfig: await dockerConfig(host) }), host);
});

test('a bearer token from HOTOCR_REGISTRY_TOKEN is sent as is', async () => {
  const { host, seen } = await fakeRegistry('token');
  await roundTrip(new OciClient({ token: TOKEN, dockerConfig: join(work, 'none.json') }), host);
  assert.equal(seen.filter((s) => s.startsWith('401')).length, 0);
});

test('no or wrong credentials: REGISTRY_AUTH, saying how to log in', async () => {
  for (const scheme of ['token', 'basic'] as const) {
    const { host } = await fakeRegistry(scheme);
    for (const config of [join(work, 'none.json'), await dockerConfig(host, 'wrong-password')]) {
      const client = new OciClient({ dockerConfig: config });
      await assert.rejects(
        client.manifest(parseReference(`${host}/models/ppocr:1.0.0`)),
        (e: HotocrError) => {
          assert.equal(e.code, 'REGISTRY_AUTH', `${scheme} ${config}`);
          assert.match(e.message, /docker login|credentials/);
          return true;
        },
      );
    }
  }
});

/** A server answering every request with `handle`; `seen` records each request's method, path and Authorization. */
async function server(
  handle: (req: IncomingMessage, res: import('node:http').ServerResponse) => void | Promise<void>,
): Promise<{ host: string; seen: { method: string; path: string; authorization?: string }[] }> {
  const seen: { method: string; path: string; authorization?: string }[] = [];
  const s = createServer((req, res) => {
    seen.push({
      method: req.method!,
      path: req.url!,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    void handle(req, res);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
}

/**
 * Streams `total` bytes (in 64 KiB chunks, waiting when the client does not read) and
 * resolves with how many went out before the client stopped reading.
 */
function flood(res: import('node:http').ServerResponse, total: number): Promise<number> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    let stopped = false;
    res.on('close', () => {
      stopped = true;
      resolve(sent);
    });
    const pump = () => {
      while (!stopped && sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!stopped) res.end();
    };
    pump();
  });
}

describe('a registry trusted for nothing', () => {
  const GiB = 1024 ** 3;

  test('a manifest, a tag list or an error page past its limit is refused as it streams, not read whole', async () => {
    for (const [path, code, headers] of [
      ['/v2/models/ppocr/manifests/1.0.0', 'ARTIFACT_INVALID', {}],
      ['/v2/models/ppocr/tags/list', 'REGISTRY_ERROR', {}],
      ['/v2/models/ppocr/manifests/1.0.0', 'ARTIFACT_INVALID', { 'content-length': String(GiB) }],
    ] as const) {
      let sent: Promise<number> = Promise.resolve(0);
      const { host } = await server((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        sent = flood(res, GiB);
      });
      const client = new OciClient({ dockerConfig: join(work, 'none.json') });
      const call = path.includes('tags')
        ? client.tags(host, 'models/ppocr')
        : client.manifest(parseReference(`${host}/models/ppocr:1.0.0`));
      await assert.rejects(call, (e: HotocrError) => e.code === code && /limit/.test(e.message));
      // What went out is what the sockets' buffers hold, not the gigabyte.
      assert.ok((await sent) < 64 * 1024 * 1024, `${path}: ${(await sent) / 2 ** 20} MiB sent`);
    }
  });

  test('an error page is neither read whole nor shown: the answer says its status alone', async () => {
    let sent: Promise<number> = Promise.resolve(0);
    const { host } = await server((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.write('<html>REMOTE-SECRET-PAGE ');
      sent = flood(res, GiB);
    });
    await assert.rejects(
      new OciClient({ dockerConfig: join(work, 'none.json') }).manifest(
        parseReference(`${host}/models/ppocr:1.0.0`),
      ),
      (e: HotocrError) => {
        assert.equal(e.code, 'REGISTRY_ERROR');
        assert.match(e.message, /answered 500/);
        assert.doesNotMatch(e.message, /REMOTE-SECRET-PAGE/);
        return true;
      },
    );
    assert.ok((await sent) < 64 * 1024 * 1024);
  });

  test('a redirect is followed for a blob alone, and never carries credentials', async () => {
    const blob = Buffer.from('the layer, stored elsewhere');
    const layer = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const elsewhere = await server((_req, res) => void res.writeHead(200).end(blob));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.hotocr.package.config.v1+json', digest: layer, size: 2 },
        layers: [{ mediaType: 'application/vnd.hotocr.package.v1+zip', digest: layer, size: blob.length }],
      }),
    );
    let redirectManifest = true;
    const registry = await server((req, res) => {
      if (req.url!.includes('/manifests/') && redirectManifest)
        return void res.writeHead(307, { location: `http://${elsewhere.host}/stolen` }).end();
      if (req.url!.includes('/manifests/')) return void res.writeHead(200).end(manifest);
      res.writeHead(307, { location: `http://${elsewhere.host}/blob` }).end();
    });
    const client = new OciClient({ token: TOKEN, dockerConfig: join(work, 'none.json') });
    const ref = parseReference(`${registry.host}/models/ppocr:1.0.0`);
    await assert.rejects(
      client.manifest(ref),
      (e: HotocrError) => e.code === 'REGISTRY_ERROR' && /redirected/.test(e.message),
    );
    assert.deepEqual(elsewhere.seen, [], 'a manifest request is not sent elsewhere');
    assert.ok(registry.seen.every((r) => r.authorization === `Bearer ${TOKEN}`));
    redirectManifest = false;
    const out = join(work, 'redirected.zip');
    await client.pull(ref, out, 1 << 20);
    assert.ok((await readFile(out)).equals(blob));
    assert.deepEqual(
      elsewhere.seen,
      [{ method: 'GET', path: '/blob' }],
      'the blob is fetched there, without credentials',
    );
  });

  test("Docker's credentials go to a token service on the registry's own host, or one the operator named, alone", async () => {
    const tokens = await server((req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: req.headers.authorization ? TOKEN : 'anonymous' }));
    });
    const registry = await server(async (req, res) => {
      await body(req);
      if (req.headers.authorization === `Bearer ${TOKEN}`) return void res.writeHead(404).end();
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://${tokens.host}/token",service="fake",scope="repository:models/ppocr:pull"`,
        })
        .end();
    });
    const config = await dockerConfig(registry.host);
    const ref = parseReference(`${registry.host}/models/ppocr:1.0.0`);
    // A realm on another port: asked anonymously; the anonymous token opens nothing.
    await assert.rejects(
      new OciClient({ dockerConfig: config }).manifest(ref),
      (e: HotocrError) => e.code === 'REGISTRY_AUTH',
    );
    assert.ok(
      tokens.seen.length > 0 && tokens.seen.every((r) => r.authorization === undefined),
      JSON.stringify(tokens.seen),
    );
    // Named by the operator: it gets them, and its token opens the repository (nothing there: 404).
    await assert.rejects(
      new OciClient({ dockerConfig: config, tokenRealms: [tokens.host] }).manifest(ref),
      (e: HotocrError) => e.code === 'ARTIFACT_NOT_FOUND',
    );
    assert.equal(
      tokens.seen.at(-1)?.authorization,
      `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`,
    );
  });
});
