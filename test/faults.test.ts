// test-needs: model, root
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import type { HotocrError } from '../src/errors.js';
import type { ServedModel } from '../src/loaders/index.js';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { Registry, StateStore } from '../src/registry/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { renderText } from './helpers/images.js';
import { manifest, packWith, sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const mounts: string[] = [];
// Registered before tempDir's own clean-up, so the folders are unmounted before they are removed.
after(() => {
  for (const dir of mounts.reverse()) execFileSync('umount', ['-l', dir]);
});
const work = tempDir();
const TOKEN = 'test-admin-token-0123456789abcdef';

/** A small tmpfs the test can fill: the disk that runs out. Needs root, as the test machines run. */
async function smallDisk(dir: string, megabytes: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(`these tests mount a small tmpfs to fill, which needs root: ${(error as Error).message}`);
  }
  mounts.push(dir);
}

async function serve(home: string): Promise<RunningServer> {
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  return startServer(
    readServeConfig({ port: '0', host: '127.0.0.1', data: home, adminTokenFile: join(work, 'token') }, {}),
    pino({ level: 'silent' }),
  );
}

async function bundledVersion(home: string, version: string): Promise<Buffer> {
  const out = join(work, `ppocr-${version}.zip`);
  await pack(await writeBundledSource(join(work, `src-${version}`), version), {
    signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')),
    out,
  });
  return readFile(out);
}

async function upload(server: RunningServer, body: Buffer): Promise<Response> {
  return fetch(`${server.url}/v1/models`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
    body,
  });
}

async function readsPage(server: RunningServer): Promise<string> {
  const res = await fetch(`${server.url}/v1/ocr`, {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: await renderText(['Still serving 5']),
  });
  assert.equal(res.status, 200);
  return res.headers.get('x-model-version')!;
}

describe('the disk fills', () => {
  test('during an upload: 507 STORAGE_FULL, no partial file, the active version untouched', async () => {
    const home = join(work, 'full-uploads');
    await smallDisk(join(home, 'uploads'), 2);
    const server = await serve(home);
    try {
      const res = await upload(server, await bundledVersion(home, '4.1.0'));
      assert.equal(res.status, 507);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'STORAGE_FULL');
      assert.deepEqual(await readdir(join(home, 'uploads')), []);
      assert.equal(await readsPage(server), 'ppocr/4.0.0');
    } finally {
      await server.close();
    }
  });

  test('while the accepted package is kept: 507 STORAGE_FULL, no temporary copy left, the active version untouched', async () => {
    const home = join(work, 'full-packages');
    // Room for the bundled package (about 15 MB), not for a second one.
    await smallDisk(join(home, 'packages'), 24);
    const server = await serve(home);
    try {
      const before = await readdir(join(home, 'packages'));
      assert.equal(before.length, 1);
      const res = await upload(server, await bundledVersion(home, '4.2.0'));
      assert.equal(res.status, 507);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'STORAGE_FULL');
      assert.match(body.error.message, /No space left to keep a copy/);
      assert.deepEqual(await readdir(join(home, 'packages')), before);
      assert.equal(await readsPage(server), 'ppocr/4.0.0');
    } finally {
      await server.close();
    }
  });
});

describe('kept packages', () => {
  test('stay bounded however many versions are swapped in: what the history and the loaded versions need, no more', async () => {
    const dir = join(work, 'kept');
    const key = await keygen({ type: 'ed25519', out: join(dir, 'key') });
    const trust = await TrustStore.load(key.publicKeyPath);
    const loaded = new Set<string>();
    const registry = await Registry.create({
      verify: (path, policy) => verifyPackage(path, { trust, keepBytes: true, ...policy }),
      // Stand-in graphs: what is measured here is the registry's files, not inference.
      load: async (pkg) => {
        loaded.add(pkg.sha256);
        return {
          loader: 'stand-in',
          metadata: {},
          read: async () => ({ lines: [], timings: { det: 0, cls: 0, rec: 0, inference: 0, total: 0 } }),
          release: async () => {
            loaded.delete(pkg.sha256);
          },
        } satisfies ServedModel;
      },
      warmUp: async () => {},
      store: new StateStore(join(dir, 'state.json')),
      packagesDir: join(dir, 'packages'),
    });
    // A copy left by a process that died while keeping it.
    await mkdir(join(dir, 'packages'), { recursive: true });
    await writeFile(join(dir, 'packages', `${'a'.repeat(64)}.zip.1.tmp`), 'partial');
    for (let i = 0; i < 15; i++) {
      const src = await sourceDir(join(dir, `src-${i}`), manifest({ version: `1.0.${i}` }));
      await registry.submit(await packWith(src, key.privateKeyPath, join(dir, `p-${i}.zip`)), {
        source: 'folder',
      });
    }
    // A version that fails to load leaves no copy behind either.
    const failing = await sourceDir(join(dir, 'src-fail'), manifest({ version: '1.1.0', runtime: 'x' }));
    const broken = await Registry.create({
      verify: (path, policy) => verifyPackage(path, { trust, keepBytes: true, ...policy }),
      load: async () => {
        throw new Error('cannot load');
      },
      warmUp: async () => {},
      store: new StateStore(join(dir, 'state.json')),
      packagesDir: join(dir, 'packages'),
    });
    await assert.rejects(
      broken.submit(await packWith(failing, key.privateKeyPath, join(dir, 'p-fail.zip')), {
        source: 'folder',
      }),
      /cannot load/,
    );
    const state = await new StateStore(join(dir, 'state.json')).read();
    const history = state.history.ppocr!.map((h) => `${h.sha256}.zip`).sort();
    assert.equal(history.length, 10);
    assert.deepEqual((await readdir(join(dir, 'packages'))).sort(), history);
    // Rollback still finds what it needs.
    assert.equal((await registry.rollback('ppocr')).version, '1.0.13');
    await registry.close();
    await broken.close();
  });
});

describe('what lies where a package should be', () => {
  test('a FIFO, a directory and a file gone before it is read are refused at once with ARCHIVE_INVALID', {
    timeout: 20_000,
  }, async () => {
    const dir = join(work, 'not-files');
    await mkdir(dir, { recursive: true });
    const key = await keygen({ type: 'ed25519', out: join(dir, 'key') });
    const trust = await TrustStore.load(key.publicKeyPath);
    execFileSync('mkfifo', [join(dir, 'fifo.zip')]);
    await mkdir(join(dir, 'dir.zip'));
    const cases: [string, RegExp][] = [
      ['fifo.zip', /not a regular file/],
      ['dir.zip', /not a regular file|it is a directory/],
      ['gone.zip', /it is gone/],
    ];
    // The test's timeout is the bound: reading a FIFO would wait for a writer forever.
    for (const [name, why] of cases) {
      await assert.rejects(verifyPackage(join(dir, name), { trust }), (e: HotocrError) => {
        assert.equal(e.code, 'ARCHIVE_INVALID', name);
        assert.match(e.message, why);
        return true;
      });
    }
    // And nothing is left reading the FIFO: opening it to write finds no reader.
    assert.throws(
      () => openSync(join(dir, 'fifo.zip'), constants.O_WRONLY | constants.O_NONBLOCK),
      (e: NodeJS.ErrnoException) => e.code === 'ENXIO',
    );
  });
});

describe('graphs the runtime will not take', () => {
  test('a valid ONNX graph in the wrong role, and bytes that are no graph, fail their version; the active one keeps serving', async () => {
    const home = join(work, 'bad-graphs');
    const server = await serve(home);
    try {
      const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
      const cases: [string, string, (src: string) => Promise<void>][] = [
        ['4.1.0', 'GRAPH_INCOMPATIBLE', (src) => copyFile(join(src, 'rec.onnx'), join(src, 'det.onnx'))],
        ['4.2.0', 'GRAPH_INVALID', (src) => writeFile(join(src, 'cls.onnx'), 'not a graph at all')],
      ];
      for (const [version, code, spoil] of cases) {
        const src = await writeBundledSource(join(work, `bad-graph-${version}`), version);
        await spoil(src);
        const out = join(work, `bad-graph-${version}.zip`);
        await pack(src, { signer, out });
        const res = await upload(server, await readFile(out));
        assert.equal(res.status, 422);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
        assert.equal(await readsPage(server), 'ppocr/4.0.0');
      }
    } finally {
      await server.close();
    }
  });
});
