// test-needs: model
/**
 * Trust that changes while the server serves: a key added to the trust folder makes the next
 * package it signed acceptable, a key removed makes the next one refused, a broken file keeps
 * the trust in use; versions a removed key signed are retired only when an operator asks;
 * SIGHUP reads the folder again; Sigstore identities are read with the keys; the expiry
 * gauges show certificates' and keys' real dates.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import type { RegistryEvent } from '../src/registry/index.js';
import { LEAF_EXT, opensslIssue, opensslRoot } from './helpers/openssl.js';
import { serveProcess } from './helpers/serve-process.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
const TOKEN = 'trust-admin-token-0123456789abcd';

async function key(name: string) {
  return keygen({ type: 'ed25519', out: join(work, `key-${name}`) });
}

async function packageOf(version: string, signingKey: string, certificateChain?: Buffer): Promise<Buffer> {
  const out = join(work, `ppocr-${version}.zip`);
  await pack(await writeBundledSource(join(work, `src-${version}`), version), {
    signer: await keyFileSigner(signingKey),
    out,
    ...(certificateChain ? { certificateChain } : {}),
  });
  return readFile(out);
}

async function serve(
  home: string,
  trust: string,
): Promise<{ server: RunningServer; events: RegistryEvent[] }> {
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  const server = await startServer(
    readServeConfig(
      { port: '0', host: '127.0.0.1', data: home, trust, adminTokenFile: join(work, 'token') },
      {},
    ),
    pino({ level: 'silent' }),
  );
  const events: RegistryEvent[] = [];
  server.registry.on((e) => events.push(e));
  return { server, events };
}

async function call(server: RunningServer, method: string, path: string, body?: Buffer) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/zip' } : {}) },
    ...(body ? { body } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string } },
  };
}

/** Refused because no trusted key made the signature (an Ed25519 one cannot say more than that). */
const refusedAsUntrusted = (r: { status: number; body: { error?: { code: string } } }) =>
  r.status === 422 && ['KEY_UNTRUSTED', 'SIGNATURE_INVALID'].includes(r.body.error?.code ?? '');

describe('trust that changes while serving', () => {
  test('keys added and removed while serving apply to the next package; a broken file keeps the trust; retiring is the operator’s call', async () => {
    const [a, b, c] = [await key('a'), await key('b'), await key('c')];
    const trust = join(work, 'trust');
    await mkdir(trust, { recursive: true });
    await copyFile(a.publicKeyPath, join(trust, 'a.pub'));
    await copyFile(c.publicKeyPath, join(trust, 'c.pub'));
    const { server, events } = await serve(join(work, 'home'), trust);
    const trustEvents = () => events.filter((e) => e.type === 'trust');
    const reloaded = async (n: number) => until(() => trustEvents().length >= n, `trust read again (${n})`);
    try {
      assert.equal(
        (await call(server, 'POST', '/v1/models', await packageOf('5.0.0', a.privateKeyPath))).status,
        201,
      );
      const byB = await packageOf('5.1.0', b.privateKeyPath);
      assert.ok(refusedAsUntrusted(await call(server, 'POST', '/v1/models', byB)));

      // Added while serving: no restart.
      await copyFile(b.publicKeyPath, join(trust, 'b.pub'));
      await reloaded(1);
      const added = trustEvents()[0]!;
      assert.deepEqual(added.type === 'trust' && added.added.map((e) => e.source), ['b.pub']);
      assert.equal((await call(server, 'POST', '/v1/models', byB)).status, 201);
      assert.equal(server.registry.active('ppocr')?.version, '5.1.0');

      // A file that does not parse: the trust in use is kept, and the event says why.
      await writeFile(join(trust, 'broken.pem'), 'not a key\n');
      await reloaded(2);
      const broken = trustEvents()[1]!;
      assert.equal(broken.type === 'trust' && broken.error?.code, 'TRUST_STORE_INVALID');
      assert.equal(
        (await call(server, 'POST', '/v1/models', await packageOf('5.2.0', b.privateKeyPath))).status,
        201,
      );
      await rm(join(trust, 'broken.pem'));
      await reloaded(3);

      // Removed: the next package it signed is refused, but what it signed keeps serving.
      await rm(join(trust, 'b.pub'));
      await reloaded(4);
      assert.ok(
        refusedAsUntrusted(
          await call(server, 'POST', '/v1/models', await packageOf('5.3.0', b.privateKeyPath)),
        ),
      );
      assert.equal(server.registry.active('ppocr')?.version, '5.2.0');

      // The operator retires: back to the best version a trusted key signed.
      const retired = await call(server, 'POST', '/v1/trust/retire');
      assert.equal(retired.status, 200, JSON.stringify(retired.body));
      assert.deepEqual(retired.body.retired, [{ name: 'ppocr', retired: ['5.2.0'], active: '5.0.0' }]);
      assert.equal(server.registry.active('ppocr')?.version, '5.0.0');

      // With no trusted version left, retiring refuses and the model keeps serving.
      await rm(join(trust, 'a.pub'));
      await reloaded(5);
      const none = await call(server, 'POST', '/v1/trust/retire');
      assert.equal(none.status, 409);
      assert.equal(none.body.error?.code, 'NO_TRUSTED_VERSION');
      assert.equal(server.registry.active('ppocr')?.version, '5.0.0');
    } finally {
      await server.close();
    }
  });

  test('Sigstore identities added to the trust folder while serving are read with it; a bad line keeps the trust in use', async () => {
    const a = await key('ids-a');
    const trust = join(work, 'trust-ids');
    await mkdir(trust, { recursive: true });
    await copyFile(a.publicKeyPath, join(trust, 'a.pub'));
    const { server, events } = await serve(join(work, 'home-ids'), trust);
    const trustEvents = () => events.filter((e) => e.type === 'trust');
    const listed = async () =>
      (
        (await call(server, 'GET', '/v1/models')).body as unknown as {
          trust: { kind: string; source: string; identity?: string; issuer?: string }[];
        }
      ).trust.filter((t) => t.kind === 'identity');
    try {
      await writeFile(
        join(trust, 'release.identities'),
        '# who may sign keyless\nrelease@example.com https://accounts.google.com\n',
      );
      await until(() => trustEvents().length >= 1, 'trust read again');
      const added = trustEvents()[0]!;
      assert.deepEqual(added.type === 'trust' && added.added.map((e) => [e.kind, e.source]), [
        ['identity', 'release.identities:2'],
      ]);
      assert.deepEqual(
        (await listed()).map((t) => [t.identity, t.issuer]),
        [['release@example.com', 'https://accounts.google.com']],
      );

      await writeFile(join(trust, 'release.identities'), 'release@example.com\n');
      await until(() => trustEvents().length >= 2, 'trust read again (bad line)');
      const refused = trustEvents()[1]!;
      assert.equal(refused.type === 'trust' && refused.error?.code, 'TRUST_STORE_INVALID');
      assert.match(refused.type === 'trust' ? refused.error!.message : '', /release\.identities line 1/);
      assert.equal((await listed()).length, 1, 'the identities in use are kept');
    } finally {
      await server.close();
    }
  });

  test('SIGHUP reads the trust folder again', async () => {
    const [a, b] = [await key('hup-a'), await key('hup-b')];
    const trust = join(work, 'trust-hup');
    await mkdir(trust, { recursive: true });
    await copyFile(a.publicKeyPath, join(trust, 'a.pub'));
    const server = await serveProcess([
      '--data',
      join(work, 'home-hup'),
      '--trust',
      trust,
      '--models',
      join(work, 'hup-models'),
    ]);
    try {
      const read = server.waitFor(/trust store read again \(SIGHUP\)/);
      await copyFile(b.publicKeyPath, join(trust, 'b.key.pub'));
      server.child.kill('SIGHUP');
      await read;
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  test("the expiry gauges carry each signer certificate's and trusted key's own dates", async () => {
    const dir = join(work, 'certs');
    await mkdir(dir, { recursive: true });
    const root = await opensslRoot(dir, 'root', { days: 400 });
    const leaf = await opensslIssue(dir, 'leaf', root, { ext: LEAF_EXT, days: 20 });
    const keyed = await key('gauged');
    const trust = join(work, 'trust-gauges');
    await mkdir(trust, { recursive: true });
    const keyNotAfter = '2027-02-01T00:00:00.000Z';
    await writeFile(join(trust, 'root.crt'), await readFile(root.cert));
    await writeFile(
      join(trust, 'release.pub'),
      `Not-After: ${keyNotAfter}\n${await readFile(keyed.publicKeyPath, 'utf8')}`,
    );
    const { server } = await serve(join(work, 'home-gauges'), trust);
    try {
      const pkg = await packageOf('6.0.0', leaf.key, await readFile(leaf.cert));
      assert.equal((await call(server, 'POST', '/v1/models', pkg)).status, 201);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const value = (line: RegExp) => Number(line.exec(metrics)?.[1]);
      const leafEnds = Date.parse(new X509Certificate(await readFile(leaf.cert)).validTo) / 1000;
      const rootEnds = Date.parse(new X509Certificate(await readFile(root.cert)).validTo) / 1000;
      assert.equal(
        value(
          /^hotocr_signer_certificate_expiry_timestamp_seconds\{name="ppocr",version="6\.0\.0"\} (\S+)$/m,
        ),
        leafEnds,
      );
      assert.equal(
        value(/^hotocr_trust_expiry_timestamp_seconds\{kind="root",[^}]*file="root\.crt"\} (\S+)$/m),
        rootEnds,
      );
      assert.equal(
        value(/^hotocr_trust_expiry_timestamp_seconds\{kind="key",[^}]*file="release\.pub"\} (\S+)$/m),
        Date.parse(keyNotAfter) / 1000,
      );
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
        trust: { kind: string; source: string; notAfter?: string }[];
      };
      assert.deepEqual(
        models.trust.map((t) => [t.kind, t.source, t.notAfter]),
        [
          ['key', 'release.pub', keyNotAfter],
          ['root', 'root.crt', new Date(rootEnds * 1000).toISOString()],
        ],
      );
    } finally {
      await server.close();
    }
  });
});
