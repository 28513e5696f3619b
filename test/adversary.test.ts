// test-needs: model
/**
 * A package no one trusted signed must never hold up the server: a certificate loop is
 * answered at once and the next package goes through; a server told to stop while it verifies
 * a large package stops at once, and the package is neither lost nor quarantined.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import pino from 'pino';
import { startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { ensureBundledPackage, keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { CA_EXT, LEAF_EXT, opensslIssue, opensslRoot } from './helpers/openssl.js';
import { sh } from './helpers/packages.js';
import { serveProcess } from './helpers/serve-process.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
const home = join(work, 'home');
const TOKEN = 'adversary-admin-token-0123456789';

before(async () => {
  await ensureBundledPackage(home);
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
});

/** A bundled package signed with `key`, `signer.pem` holding `certs` as they are, made with zip. */
async function certificatePackage(version: string, key: string, certs: string[]): Promise<string> {
  const src = await writeBundledSource(join(work, `src-${version}`), version);
  const out = join(work, `ppocr-${version}.zip`);
  await sh(
    src,
    `sha256sum * > ../checksum-${version} && mv ../checksum-${version} checksum.sha256
    openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sign '${key}' -out signature.sig checksum.sha256
    cat ${certs.map((c) => `'${c}'`).join(' ')} > signer.pem
    zip -q -Z store '${out}' *`,
  );
  return out;
}

describe('a certificate loop sent to a running server', () => {
  test('is refused at once with CERT_CHAIN_INVALID, and the next upload is taken', async () => {
    const certs = join(work, 'certs');
    await mkdir(certs, { recursive: true });
    const root = await opensslRoot(certs, 'root');
    const a0 = await opensslRoot(certs, 'a0', { cn: 'A' });
    const b0 = await opensslRoot(certs, 'b0', { cn: 'B' });
    const a = await opensslIssue(certs, 'a', b0, { ext: CA_EXT, key: a0.key, cn: 'A' });
    const b = await opensslIssue(certs, 'b', a0, { ext: CA_EXT, key: b0.key, cn: 'B' });
    const leaf = await opensslIssue(certs, 'leaf', a, { ext: LEAF_EXT });
    const trust = join(work, 'trust');
    await mkdir(trust, { recursive: true });
    await writeFile(join(trust, 'root.crt'), await readFile(root.cert));
    await writeFile(join(trust, 'dev.pub'), await readFile(join(home, 'dev-key', 'signing.pub')));
    const bundled = await ensureBundledPackage(home);
    const server = await startServer(
      readServeConfig(
        {
          port: '0',
          host: '127.0.0.1',
          data: home,
          model: bundled.packagePath,
          trust,
          adminTokenFile: join(work, 'token'),
        },
        {},
      ),
      pino({ level: 'silent' }),
    );
    try {
      const upload = async (path: string) =>
        fetch(`${server.url}/v1/models`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
          body: await readFile(path),
          signal: AbortSignal.timeout(30_000),
        });
      const loop = await upload(await certificatePackage('4.5.0', leaf.key, [leaf.cert, a.cert, b.cert]));
      assert.equal(loop.status, 422);
      assert.equal(((await loop.json()) as { error: { code: string } }).error.code, 'CERT_CHAIN_INVALID');
      const good = join(work, 'ppocr-4.6.0.zip');
      await pack(await writeBundledSource(join(work, 'src-4.6.0'), '4.6.0'), {
        signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')),
        out: good,
      });
      const next = await upload(good);
      assert.equal(next.status, 201);
      assert.equal(server.registry.active('ppocr')?.version, '4.6.0');
    } finally {
      await server.close();
    }
  });
});

describe('a server told to stop while it verifies', () => {
  let big: string;
  before(async () => {
    // A valid package large enough that reading it takes a while: a verification to interrupt.
    const src = await writeBundledSource(join(work, 'src-big'), '4.9.0');
    await sh(src, 'head -c 600M /dev/zero > padding.bin');
    big = join(work, 'ppocr-4.9.0-big.zip');
    await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out: big });
  });

  test('exits 0 on SIGTERM without finishing it; the package stays in the watched folder, nothing quarantined', async () => {
    const models = join(work, 'models');
    const quarantine = join(work, 'quarantine');
    await mkdir(models, { recursive: true });
    const data = join(work, 'stop-home');
    await ensureBundledPackage(data);
    const server = await serveProcess([
      '--data',
      data,
      '--models',
      models,
      '--quarantine',
      quarantine,
      '--settle-ms',
      '100',
    ]);
    const dropped = join(models, 'ppocr-4.9.0.zip');
    const verifying = server.waitFor(/"type":"verifying"[^\n]*ppocr-4\.9\.0\.zip/);
    await rename(big, dropped);
    await verifying;
    server.child.kill('SIGTERM');
    const code = await Promise.race([
      server.exited,
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref()),
    ]);
    if (code === 'hung') server.child.kill('SIGKILL');
    assert.equal(code, 0, server.log().slice(-2000));
    const after = server.log().slice(server.log().lastIndexOf('"type":"verifying"'));
    assert.doesNotMatch(
      after,
      /"type":"(verified|loading|rejected)"/,
      'the verification was stopped, not finished',
    );
    assert.ok(existsSync(dropped), 'the package is still in the watched folder');
    assert.ok(!existsSync(quarantine) || (await readdir(quarantine)).length === 0, 'nothing was quarantined');
    assert.deepEqual(
      (await readdir(join(data, 'packages'))).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary copy is left',
    );
  });
});
