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
import { after, test } from 'node:test';
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
