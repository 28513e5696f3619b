// test-needs: model, registry
/**
 * A model signed with OpenSSF Model Signing by `hotocr pack --format oms` is served like a
 * hotocr package, through every channel a server takes packages from: the watched folder,
 * an upload, and a registry it follows (Debian's docker-registry on loopback). The package
 * is first checked by a reading of the test's own (unzip, the DSSE signature over its
 * pre-authentication encoding and every digest computed here with node:crypto), then served:
 * it reads a page, and its signer is reported as `oms-key`. A copy changed after signing is
 * refused by each channel with CHECKSUM_MISMATCH, and the version in service stays; a restart
 * verifies it again and resumes it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { BUNDLED_NAME, writeBundledSource } from '../src/pack/index.js';
import { freePort, pushEvent, startDockerRegistry } from './helpers/fleet.js';
import { renderText } from './helpers/images.js';
import { checkOmsPackage } from './helpers/oms.js';
import { opensslKey } from './helpers/openssl.js';
import { sh } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const work = tempDir();
const TOKEN = 'oms-channels-admin-token-0123456789';
const SECRET = 'oms-channels-webhook-secret-0123456789';
const REPOSITORY = `models/${BUNDLED_NAME}`;

let key: { key: string; pub: string };
let registryPort: number;
let registry: ChildProcess;
let server: RunningServer;
const incoming = join(work, 'server', 'incoming');

/** `hotocr pack --format oms` of the bundled model at `version`, signed with the test's P-384 key. */
async function omsPackage(version: string): Promise<string> {
  const src = await writeBundledSource(join(work, `src-${version}`), version);
  const out = join(work, `oms-${version}.zip`);
  const { stdout } = await run(process.execPath, [
    CLI,
    'pack',
    src,
    '--format',
    'oms',
    '--key',
    key.key,
    '--out',
    out,
  ]);
  assert.match(stdout, /signed OMS \(model\.sig\) ecdsa-p384-sha384/);
  return out;
}

/** The package at `version`, one byte of its detection graph changed after signing, zipped again with its model.sig. */
async function tampered(version: string): Promise<string> {
  const good = await omsPackage(version);
  const dir = join(work, `tampered-${version}`);
  await mkdir(dir);
  await sh(dir, `unzip -q '${good}'`);
  const det = await readFile(join(dir, 'det.onnx'));
  det[det.length - 1]! ^= 0xff;
  await writeFile(join(dir, 'det.onnx'), det);
  const out = join(work, `tampered-${version}.zip`);
  await sh(dir, `zip -q -0 -X '${out}' *`);
  return out;
}

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
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } },
  };
}

/** Into the watched folder as an operator drops a file: written beside it, then renamed in. */
async function drop(pkg: string, name: string): Promise<void> {
  const tmp = join(work, `${name}.partial`);
  await copyFile(pkg, tmp);
  await rename(tmp, join(incoming, name));
}

async function push(pkg: string, tag: string): Promise<void> {
  await run(process.execPath, [CLI, 'push', pkg, `127.0.0.1:${registryPort}/${REPOSITORY}:${tag}`]);
  const res = await fetch(`${server.url}/v1/hooks/registry`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${SECRET}`,
      'content-type': 'application/vnd.docker.distribution.events.v1+json',
    },
    body: pushEvent(tag, REPOSITORY),
  });
  assert.equal(res.status, 202);
}

const active = () => server.registry.active(BUNDLED_NAME)?.version;

async function rejections(code: string): Promise<number> {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const line = new RegExp(`^hotocr_package_rejections_total\\{reason="${code}"\\} (\\d+)$`, 'm').exec(
    metrics,
  );
  return line ? Number(line[1]) : 0;
}

async function reads(): Promise<{ version: string | null; text: string }> {
  const res = await fetch(`${server.url}/v1/ocr`, {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: await renderText(['Signed once 2026']),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { lines: { text: string }[] };
  return {
    version: res.headers.get('x-model-version'),
    text: body.lines.map((l) => l.text.replaceAll(' ', '')).join(''),
  };
}

async function signerOf(version: string): Promise<Record<string, unknown> | undefined> {
  const listing = (await call('GET', '/v1/models')).body as {
    models: { name: string; versions: { version: string; signer: Record<string, unknown> }[] }[];
  };
  return listing.models.find((m) => m.name === BUNDLED_NAME)?.versions.find((v) => v.version === version)
    ?.signer;
}

/** The server under test: trust folder, watched folder, uploads, and the followed registry. */
function start(): Promise<RunningServer> {
  return startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: join(work, 'server'),
        trust: join(work, 'trust'),
        models: incoming,
        registry: [`127.0.0.1:${registryPort}/${REPOSITORY}`],
        registryPollMs: '86400000',
        registryWebhookSecretFile: join(work, 'secret'),
        adminTokenFile: join(work, 'token'),
        uploadLimit: '60000000',
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
}

before(async () => {
  key = await opensslKey(work, 'release-p384', 'ec-p384');
  await mkdir(join(work, 'trust'));
  await copyFile(key.pub, join(work, 'trust', 'release.pub'));
  await writeFile(join(work, 'secret'), SECRET);
  await writeFile(join(work, 'token'), TOKEN);
  await mkdir(incoming, { recursive: true });
  registryPort = await freePort();
  registry = await startDockerRegistry(work, registryPort);
  server = await start();
});

after(async () => {
  await server?.close();
  registry?.kill('SIGTERM');
});

describe('OMS packages written by hotocr pack --format oms, through every channel', () => {
  test('the package checks out by an independent reading; from the watched folder it is served, reads a page, and its signer is oms-key', async () => {
    const pkg = await omsPackage('4.1.0');
    const check = await checkOmsPackage(pkg, await readFile(key.pub, 'utf8'), join(work, 'unpacked-4.1.0'));
    assert.deepEqual(
      check.statement.predicate.resources.map((r) => r.name),
      ['cls.onnx', 'config.json', 'det.onnx', 'keys.txt', 'rec.onnx'],
    );
    await drop(pkg, 'ppocr-4.1.0.zip');
    await until(() => active() === '4.1.0', 'the folder package active', 120_000);
    assert.deepEqual(await reads(), { version: `${BUNDLED_NAME}/4.1.0`, text: 'Signedonce2026' });
    const signer = await signerOf('4.1.0');
    assert.equal(signer?.kind, 'oms-key');
    assert.equal(signer?.algorithm, 'ecdsa-p384-sha384');
    assert.equal(signer?.source, 'release.pub');
  });

  test('an upload takes one', async () => {
    const res = await call('POST', '/v1/models', await readFile(await omsPackage('4.2.0')));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(active(), '4.2.0');
    assert.equal((await signerOf('4.2.0'))?.kind, 'oms-key');
    assert.equal((await reads()).version, `${BUNDLED_NAME}/4.2.0`);
  });

  test('a followed registry takes one pushed to it', async () => {
    await push(await omsPackage('4.3.0'), '4.3.0');
    await until(() => active() === '4.3.0', 'the pulled package active', 120_000);
    assert.equal((await signerOf('4.3.0'))?.kind, 'oms-key');
    assert.equal((await reads()).version, `${BUNDLED_NAME}/4.3.0`);
  });

  test('a copy changed after signing is refused by every channel with CHECKSUM_MISMATCH; 4.3.0 keeps serving', async () => {
    // One copy per channel: bytes a server has refused once are not verified again from another.
    const before = await rejections('CHECKSUM_MISMATCH');

    await drop(await tampered('4.4.0'), 'ppocr-4.4.0.zip');
    await until(
      async () => (await rejections('CHECKSUM_MISMATCH')) === before + 1,
      'the folder refusal',
      60_000,
    );

    const uploaded = await call('POST', '/v1/models', await readFile(await tampered('4.4.1')));
    assert.equal(uploaded.status, 422, JSON.stringify(uploaded.body));
    assert.equal(uploaded.body.error?.code, 'CHECKSUM_MISMATCH');
    assert.match(uploaded.body.error!.message, /det\.onnx.*model\.sig/);

    await push(await tampered('4.4.2'), '4.4.2');
    const refused = async () =>
      (
        (await (await fetch(`${server.url}/v1/fleet/self`)).json()) as {
          registries?: { lastRefused?: { code: string } }[];
        }
      ).registries?.[0]?.lastRefused?.code;
    await until(async () => (await refused()) === 'CHECKSUM_MISMATCH', 'the registry refusal', 60_000);

    assert.equal(await rejections('CHECKSUM_MISMATCH'), before + 3);
    assert.equal(active(), '4.3.0');
    assert.equal((await reads()).version, `${BUNDLED_NAME}/4.3.0`);
  });

  test('a restart verifies the OMS package in service again and resumes it', async () => {
    await server.close();
    server = await start();
    await until(() => active() === '4.3.0', 'the resumed package active', 120_000);
    assert.equal((await signerOf('4.3.0'))?.kind, 'oms-key');
    assert.deepEqual(await reads(), { version: `${BUNDLED_NAME}/4.3.0`, text: 'Signedonce2026' });
  });
});
