// test-needs: model, root
/**
 * Operator decisions hold across restarts and channels, on a real server with real packages:
 * a rollback is not undone by the watched folder at the next start, a released version can be
 * activated again from its kept copy, a downgrade does not come back through another channel,
 * the traffic split and the pinning switch survive a restart (or are dropped whole, saying
 * why), an activation that cannot be persisted does not switch, and a version accepted
 * before its package expired is resumed after.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { bundledManifest, keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const mounts: string[] = [];
// Registered before tempDir's own clean-up, so the folders are unmounted before they are removed.
after(() => {
  for (const dir of mounts.reverse()) execFileSync('umount', ['-l', dir]);
});
const work = tempDir();
const TOKEN = 'decisions-admin-token-0123456789';
let keys: { privateKeyPath: string; publicKeyPath: string } | undefined;

/** A package of the bundled graphs as ppocr `version`, signed by the test's key. */
async function packageOf(version: string, manifest: Record<string, unknown> = {}): Promise<string> {
  keys ??= await keygen({ type: 'ed25519', out: join(work, 'key') });
  const src = await writeBundledSource(join(work, `src-${version}`), version);
  await writeFile(
    join(src, 'config.json'),
    JSON.stringify({ ...bundledManifest(version), ...manifest }, null, 2),
  );
  const out = join(work, `ppocr-${version}.zip`);
  if (!existsSync(out)) await pack(src, { signer: await keyFileSigner(keys.privateKeyPath), out });
  return out;
}

/** A production start: the test's key trusted, a watched folder, uploads; what it logs, kept. */
async function serve(home: string, flags: Record<string, string> = {}) {
  keys ??= await keygen({ type: 'ed25519', out: join(work, 'key') });
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  const lines: { msg: string; event?: { type: string; path?: string } }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const server = await startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: home,
        trust: keys.publicKeyPath,
        models: join(home, 'incoming'),
        settleMs: '100',
        adminTokenFile: join(work, 'token'),
        ...flags,
      },
      {},
    ),
    pino({ level: 'info' }, sink),
  );
  return { server, lines };
}

async function call(
  server: RunningServer,
  method: string,
  path: string,
  body?: unknown,
  type = 'application/json',
) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': type }),
    },
    ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string } },
  };
}

const active = (server: RunningServer) => server.registry.active('ppocr')?.version;

describe('decisions that hold across restarts and channels', () => {
  test('a rollback holds across a restart: the watched folder does not take back what it handed over before', async () => {
    const home = join(work, 'rollback');
    const first = await serve(home);
    await copyFile(await packageOf('5.0.0'), join(home, 'incoming', 'ppocr-5.0.0.zip'));
    await until(() => active(first.server) === '5.0.0', '5.0.0 active');
    await copyFile(await packageOf('5.1.0'), join(home, 'incoming', 'ppocr-5.1.0.zip'));
    await until(() => active(first.server) === '5.1.0', '5.1.0 active');
    assert.equal((await call(first.server, 'POST', '/v1/models/ppocr/rollback')).status, 200);
    assert.equal(active(first.server), '5.0.0');
    await first.server.close();

    const again = await serve(home);
    try {
      // Both files are looked at again, and both are recognised.
      await until(
        () => again.lines.filter((l) => l.event?.type === 'skipped').length >= 2,
        'the rescan to pass over both packages',
      );
      assert.equal(active(again.server), '5.0.0');
      // And a way forward: the newer version, released (keep-warm 0), is activated from its kept copy.
      const forward = await call(again.server, 'POST', '/v1/models/ppocr/versions/5.1.0/activate');
      assert.equal(forward.status, 200, JSON.stringify(forward.body));
      assert.equal(active(again.server), '5.1.0');
    } finally {
      await again.server.close();
    }
  });

  test('a downgrade does not come back through another channel, but an operator may ask for it', async () => {
    const home = join(work, 'channels');
    const { server, lines } = await serve(home);
    try {
      await copyFile(await packageOf('6.0.0'), join(home, 'incoming', 'ppocr-6.0.0.zip'));
      await until(() => active(server) === '6.0.0', '6.0.0 active');
      const lower = await readFile(await packageOf('5.5.0'));
      const refused = await call(server, 'POST', '/v1/models', lower, 'application/zip');
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error?.code, 'VERSION_DOWNGRADE');
      assert.equal(active(server), '6.0.0');
      const allowed = await call(server, 'POST', '/v1/models?allowDowngrade=true', lower, 'application/zip');
      assert.equal(allowed.status, 201, JSON.stringify(allowed.body));
      assert.equal(active(server), '5.5.0');
      assert.ok(
        lines.some((l) => /below the highest version activated \(6\.0\.0\)/.test(l.msg)),
        'the operator move back is logged as such',
      );
    } finally {
      await server.close();
    }
  });

  test('the traffic split and the pinning switch survive a restart; a split whose version cannot load again is dropped whole', async () => {
    const home = join(work, 'split');
    const first = await serve(home);
    await copyFile(await packageOf('7.0.0'), join(home, 'incoming', 'ppocr-7.0.0.zip'));
    await until(() => active(first.server) === '7.0.0', '7.0.0 active');
    const staged = await call(
      first.server,
      'POST',
      '/v1/models?activate=false',
      await readFile(await packageOf('7.1.0')),
      'application/zip',
    );
    assert.equal(staged.status, 201);
    const split = { split: { '7.0.0': 80, '7.1.0': 20 }, allowPinning: true };
    assert.equal((await call(first.server, 'PUT', '/v1/routing', split)).status, 200);
    await first.server.close();

    const second = await serve(home);
    const kept = join(
      home,
      'packages',
      `${second.server.registry.versions().find((v) => v.version === '7.1.0')?.sha256}.zip`,
    );
    try {
      const routing = await call(second.server, 'GET', '/v1/routing');
      assert.deepEqual(routing.body.split, [
        { version: '7.0.0', weight: 80 },
        { version: '7.1.0', weight: 20 },
      ]);
      assert.equal(routing.body.allowPinning, true);
    } finally {
      await second.server.close();
    }

    // The canary's kept copy damaged: it does not verify again, so the split goes, and says why.
    const bytes = await readFile(kept);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    await writeFile(kept, bytes);
    const third = await serve(home);
    try {
      const routing = await call(third.server, 'GET', '/v1/routing');
      assert.deepEqual(routing.body.split, []);
      assert.ok(
        third.lines.some((l) => /traffic split of ppocr was dropped at restart: ppocr 7\.1\.0/.test(l.msg)),
        'the drop is logged with its reason',
      );
      assert.equal(active(third.server), '7.0.0');
    } finally {
      await third.server.close();
    }
  });

  test('an activation that cannot be persisted does not switch: 507 STORAGE_FULL, the version in service stays', async () => {
    const home = join(work, 'full');
    await mkdir(home, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'tmpfs', home], { stdio: 'pipe' });
    } catch (error) {
      throw new Error(
        `this test mounts a small tmpfs to fill, which needs root: ${(error as Error).message}`,
      );
    }
    mounts.push(home);
    const { server, lines } = await serve(home);
    try {
      const upload = async (version: string, activate: boolean) =>
        call(
          server,
          'POST',
          `/v1/models?activate=${activate}`,
          await readFile(await packageOf(version)),
          'application/zip',
        );
      assert.equal((await upload('8.0.0', true)).status, 201);
      assert.equal((await upload('8.1.0', false)).status, 201);
      const before = await readFile(join(home, 'state.json'), 'utf8');
      // The disk fills up.
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(home, 'filler')}`, 'bs=1M'], { stdio: 'pipe' });
      } catch {
        // dd stops with "No space left on device": that is the point.
      }
      const refused = await call(server, 'POST', '/v1/models/ppocr/versions/8.1.0/activate');
      assert.equal(refused.status, 507);
      assert.equal(refused.body.error?.code, 'STORAGE_FULL');
      assert.equal(active(server), '8.0.0');
      assert.equal(
        await readFile(join(home, 'state.json'), 'utf8'),
        before,
        'the state file names the version in service',
      );
      assert.ok(lines.some((l) => l.event?.type === 'activation-failed'));
      const ocr = await fetch(`${server.url}/readyz`);
      assert.equal(((await ocr.json()) as { model: { version: string } }).model.version, '8.0.0');
      // Space again: the same call switches.
      await rm(join(home, 'filler'));
      assert.equal((await call(server, 'POST', '/v1/models/ppocr/versions/8.1.0/activate')).status, 200);
      assert.equal(active(server), '8.1.0');
    } finally {
      await server.close();
    }
  });

  test('a version accepted before its package expired is resumed after a restart; a new arrival is judged now', async () => {
    const home = join(work, 'expiry');
    const expires = new Date(Date.now() + 4000).toISOString();
    const pkg = await packageOf('9.0.0', { expires });
    // Packed now: packing checks the package it wrote, expiry included.
    const later = await packageOf('9.0.1', { expires });
    const first = await serve(home);
    await copyFile(pkg, join(home, 'incoming', 'ppocr-9.0.0.zip'));
    await until(() => active(first.server) === '9.0.0', '9.0.0 active');
    await first.server.close();
    await until(() => Date.now() > Date.parse(expires) + 500, 'the package to expire');
    const second = await serve(home);
    try {
      assert.equal(active(second.server), '9.0.0', 'resumed: its expiry is judged when it was accepted');
      const late = await call(second.server, 'POST', '/v1/models', await readFile(later), 'application/zip');
      assert.equal(late.body.error?.code, 'PACKAGE_EXPIRED');
    } finally {
      await second.server.close();
    }
  });

  test('routing a model that is not served is refused; a package sent as JSON is 415', async () => {
    const home = join(work, 'small');
    const { server } = await serve(home);
    try {
      await copyFile(await packageOf('5.0.0'), join(home, 'incoming', 'ppocr-5.0.0.zip'));
      await until(() => active(server) === '5.0.0', '5.0.0 active');
      const routing = await call(server, 'PUT', '/v1/routing', { name: 'nosuch', split: {} });
      assert.equal(routing.status, 400);
      assert.equal(routing.body.error?.code, 'ROUTING_INVALID');
      assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      const ocr = await fetch(`${server.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: await readFile(join(import.meta.dirname, '..', '..', 'assets', 'warmup.png')),
      });
      assert.equal(ocr.status, 200);
      const json = await call(server, 'POST', '/v1/models', { package: 'x' });
      assert.equal(json.status, 415);
      assert.equal(json.body.error?.code, 'UNSUPPORTED_MEDIA_TYPE');
    } finally {
      await server.close();
    }
  });
});
