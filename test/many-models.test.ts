// test-needs: model
/**
 * One server, several models, each chosen per request: packages named zh, en and receipts
 * (the bundled graphs under three names) arrive by the watched folder and by upload; requests
 * choose with POST /v1/models/{name}/ocr, and POST /v1/ocr goes to the default model. A swap,
 * a rollback, a split or the retiring of one model leaves the others alone; a restart resumes
 * every model with its routing; a flood on one model leaves the others admitted.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { bundledManifest, keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
const TOKEN = 'many-models-admin-token-0123456789';
let keys: { privateKeyPath: string; publicKeyPath: string };
let page: Buffer;

before(async () => {
  keys = await keygen({ type: 'ed25519', out: join(work, 'key') });
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  page = await renderText(['Many models 42']);
});

/** A package of the bundled graphs as model `name` at `version`, signed by the test's key. */
async function packageOf(name: string, version: string): Promise<string> {
  const out = join(work, `${name}-${version}.zip`);
  if (existsSync(out)) return out;
  const src = await writeBundledSource(join(work, `src-${name}-${version}`), version);
  await writeFile(join(src, 'config.json'), JSON.stringify({ ...bundledManifest(version), name }, null, 2));
  await pack(src, { signer: await keyFileSigner(keys.privateKeyPath), out });
  return out;
}

/** A production start on `home`: the test's key trusted, a watched folder, uploads. */
function serve(home: string, flags: Record<string, string | boolean> = {}): Promise<RunningServer> {
  return startServer(
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
    pino({ level: 'silent' }),
  );
}

type Answer = {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
};

async function call(server: RunningServer, method: string, path: string, body?: unknown): Promise<Answer> {
  const bytes = Buffer.isBuffer(body);
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': bytes ? 'application/zip' : 'application/json' }),
    },
    ...(body === undefined ? {} : { body: bytes ? (body as Buffer) : JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

/** An OCR request: to `name`'s own route, or (none) to POST /v1/ocr. */
async function ocr(
  server: RunningServer,
  name?: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${server.url}${name === undefined ? '/v1/ocr' : `/v1/models/${name}/ocr`}`, {
    method: 'POST',
    headers: { 'content-type': 'image/png', ...headers },
    body: page,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

const activeOf = (server: RunningServer, name: string) => server.registry.active(name)?.version;

async function upload(server: RunningServer, name: string, version: string, query = ''): Promise<Answer> {
  return call(server, 'POST', `/v1/models${query}`, await readFile(await packageOf(name, version)));
}

describe('one server, several models', () => {
  const home = join(work, 'three');
  let server: RunningServer;

  before(async () => {
    server = await serve(home, { keepWarm: '1' });
    // Two from one folder, the third uploaded.
    await copyFile(await packageOf('zh', '1.0.0'), join(home, 'incoming', 'zh-1.0.0.zip'));
    await copyFile(await packageOf('en', '1.0.0'), join(home, 'incoming', 'en-1.0.0.zip'));
    assert.equal((await upload(server, 'receipts', '1.0.0')).status, 201);
    await until(
      () => activeOf(server, 'zh') === '1.0.0' && activeOf(server, 'en') === '1.0.0',
      'zh and en active',
      60_000,
    );
  });
  after(() => server?.close());

  test('each request is answered by the model it names', async () => {
    for (const name of ['zh', 'en', 'receipts']) {
      const res = await ocr(server, name);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.headers.get('x-model-version'), `${name}/1.0.0`);
      assert.deepEqual(res.body.model, { name, version: '1.0.0' });
      assert.match(
        (res.body.lines as { text: string }[]).map((l) => l.text.replaceAll(' ', '')).join(''),
        /Manymodels42/i,
      );
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ['zh', 'en', 'receipts'])
      assert.match(
        metrics,
        new RegExp(
          `^hotocr_ocr_requests_total\\{name="${name}",version="${name}/1\\.0\\.0",status="200"\\} [1-9]`,
          'm',
        ),
      );
  });

  test('an unknown name is 404 MODEL_NOT_FOUND; without a default, POST /v1/ocr is 400 MODEL_REQUIRED naming them', async () => {
    const unknown = await ocr(server, 'ja');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'MODEL_NOT_FOUND');
    const routing = await call(server, 'GET', '/v1/models/ja/routing');
    assert.equal(routing.status, 404);
    assert.equal(routing.body.error?.code, 'MODEL_NOT_FOUND');
    const unnamed = await ocr(server);
    assert.equal(unnamed.status, 400);
    assert.equal(unnamed.body.error?.code, 'MODEL_REQUIRED');
    assert.match(unnamed.body.error!.message, /en, receipts, zh/);
    // Ready means requests without a name are answered: with three and no default, they are not.
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    const models = await call(server, 'GET', '/v1/models');
    assert.equal(models.body.default, null);
    assert.deepEqual(
      (models.body.models as { name: string; active: string }[]).map((m) => [m.name, m.active]).sort(),
      [
        ['en', '1.0.0'],
        ['receipts', '1.0.0'],
        ['zh', '1.0.0'],
      ],
    );
  });

  test("a pin works within the model asked for, under that model's own switch", async () => {
    const on = await call(server, 'PUT', '/v1/models/zh/routing', { split: {}, allowPinning: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal(on.body.allowPinning, true);
    assert.equal((await ocr(server, 'zh', { 'x-model-version': 'zh/1.0.0' })).status, 200);
    const other = await ocr(server, 'zh', { 'x-model-version': 'en/1.0.0' });
    assert.equal(other.status, 400);
    assert.equal(other.body.error?.code, 'REQUEST_INVALID');
    // en's switch is its own, still off.
    const off = await ocr(server, 'en', { 'x-model-version': 'en/1.0.0' });
    assert.equal(off.body.error?.code, 'PINNING_DISABLED');
    const mismatch = await call(server, 'PUT', '/v1/models/zh/routing', { name: 'en', split: {} });
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.error?.code, 'REQUEST_INVALID');
  });

  test('a swap of one model under load on all: no request fails, the others keep their versions', async () => {
    const answers: { asked: string; status: number; served: string | null }[] = [];
    let swapping = true;
    const client = async (name: string) => {
      while (swapping) {
        const res = await ocr(server, name);
        answers.push({ asked: name, status: res.status, served: res.headers.get('x-model-version') });
      }
    };
    const clients = ['zh', 'en', 'receipts', 'zh'].map(client);
    await until(() => answers.length >= 4, 'requests under way');
    const swapped = await upload(server, 'zh', '1.1.0');
    assert.equal(swapped.status, 201, JSON.stringify(swapped.body));
    const after = answers.length;
    await until(() => answers.length >= after + 4, 'requests after the swap');
    swapping = false;
    await Promise.all(clients);
    assert.deepEqual(
      answers.filter((a) => a.status !== 200),
      [],
    );
    assert.ok(
      answers.some((a) => a.served === 'zh/1.1.0'),
      'zh answered by 1.1.0 after the swap',
    );
    for (const a of answers.filter((x) => x.asked !== 'zh')) assert.equal(a.served, `${a.asked}/1.0.0`);
    assert.equal(activeOf(server, 'en'), '1.0.0');
    assert.equal(activeOf(server, 'receipts'), '1.0.0');
  });

  test('a split, a rollback and the retiring of one model leave the others alone', async () => {
    const split = await call(server, 'PUT', '/v1/models/zh/routing', { split: { '1.0.0': 50, '1.1.0': 50 } });
    assert.equal(split.status, 200, JSON.stringify(split.body));
    assert.deepEqual((await call(server, 'GET', '/v1/models/en/routing')).body.split, []);
    assert.deepEqual((await call(server, 'GET', '/v1/models/zh/routing')).body.split, [
      { version: '1.0.0', weight: 50 },
      { version: '1.1.0', weight: 50 },
    ]);
    // /v1/routing is the default model's: there is none, so it names none.
    assert.equal((await call(server, 'GET', '/v1/routing')).body.name, null);

    const none = await call(server, 'POST', '/v1/models/en/rollback');
    assert.equal(none.status, 409, 'en has nothing to roll back to');
    assert.equal(none.body.error?.code, 'NO_PREVIOUS_VERSION');
    assert.equal(activeOf(server, 'zh'), '1.1.0');
    const rollback = await call(server, 'POST', '/v1/models/zh/rollback');
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    assert.equal(activeOf(server, 'zh'), '1.0.0');
    assert.equal(activeOf(server, 'en'), '1.0.0');
    assert.equal(activeOf(server, 'receipts'), '1.0.0');

    const retired = await call(server, 'DELETE', '/v1/models/receipts');
    assert.equal(retired.status, 200, JSON.stringify(retired.body));
    assert.deepEqual(retired.body, { name: 'receipts', versions: ['1.0.0'] });
    assert.equal((await ocr(server, 'receipts')).body.error?.code, 'MODEL_NOT_FOUND');
    assert.equal((await call(server, 'DELETE', '/v1/models/receipts')).status, 404);
    assert.equal((await ocr(server, 'en')).status, 200);
    assert.equal(((await call(server, 'GET', '/v1/models/zh/routing')).body.split as unknown[]).length, 2);
    // The name is free again, from scratch: a lower version than before is not a downgrade.
    const again = await upload(server, 'receipts', '0.9.0');
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(activeOf(server, 'receipts'), '0.9.0');
  });

  test('a restart resumes every model with its routing', async () => {
    await server.close();
    server = await serve(home, { keepWarm: '1' });
    assert.equal(activeOf(server, 'zh'), '1.0.0');
    assert.equal(activeOf(server, 'en'), '1.0.0');
    assert.equal(activeOf(server, 'receipts'), '0.9.0');
    const zh = await call(server, 'GET', '/v1/models/zh/routing');
    assert.deepEqual(zh.body.split, [
      { version: '1.0.0', weight: 50 },
      { version: '1.1.0', weight: 50 },
    ]);
    assert.equal(zh.body.allowPinning, true);
    assert.equal((await call(server, 'GET', '/v1/models/en/routing')).body.allowPinning, false);
    for (const name of ['zh', 'en', 'receipts']) assert.equal((await ocr(server, name)).status, 200);
  });
});

describe('the default model', () => {
  test('--default-model takes POST /v1/ocr, /v1/routing and /readyz; before it arrives they say not ready', async () => {
    const home = join(work, 'default');
    const server = await serve(home, { defaultModel: 'en' });
    try {
      assert.equal((await upload(server, 'zh', '1.0.0')).status, 201);
      const early = await ocr(server);
      assert.equal(early.status, 503);
      assert.equal(early.body.error?.code, 'NOT_READY');
      assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
      assert.equal((await ocr(server, 'zh')).status, 200);

      assert.equal((await upload(server, 'en', '1.0.0')).status, 201);
      const unnamed = await ocr(server);
      assert.equal(unnamed.status, 200);
      assert.equal(unnamed.headers.get('x-model-version'), 'en/1.0.0');
      const ready = await call(server, 'GET', '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body.model, { name: 'en', version: '1.0.0' });
      assert.equal((await call(server, 'GET', '/v1/routing')).body.name, 'en');
      assert.equal((await call(server, 'GET', '/v1/models')).body.default, 'en');
    } finally {
      await server.close();
    }
  });

  test('without one, the only model with an active version; a known name with none active is 503 NOT_READY', async () => {
    const home = join(work, 'only');
    const server = await serve(home, { readyAllModels: true });
    try {
      assert.equal((await upload(server, 'zh', '1.0.0')).status, 201);
      const only = await ocr(server);
      assert.equal(only.status, 200);
      assert.equal(only.headers.get('x-model-version'), 'zh/1.0.0');
      // en staged, not active: known, not served.
      assert.equal((await upload(server, 'en', '1.0.0', '?activate=false')).status, 201);
      const staged = await ocr(server, 'en');
      assert.equal(staged.status, 503);
      assert.equal(staged.body.error?.code, 'NOT_READY');
      // Still one model active: unnamed requests still go to zh; but every model must read for --ready-all-models.
      assert.equal((await ocr(server)).headers.get('x-model-version'), 'zh/1.0.0');
      const ready = await call(server, 'GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body.error!.message, /en/);
      assert.equal((await call(server, 'POST', '/v1/models/en/versions/1.0.0/activate')).status, 200);
      const all = await call(server, 'GET', '/readyz');
      assert.equal(all.status, 200, JSON.stringify(all.body));
      assert.deepEqual(all.body.models, [
        { name: 'en', version: '1.0.0' },
        { name: 'zh', version: '1.0.0' },
      ]);
      assert.equal((await ocr(server)).body.error?.code, 'MODEL_REQUIRED');
    } finally {
      await server.close();
    }
  });

  test('hotocr serve --model may be repeated: each package serves under its own name', async () => {
    const home = join(work, 'repeated');
    const server = await startServer(
      readServeConfig(
        {
          port: '0',
          host: '127.0.0.1',
          data: home,
          trust: keys.publicKeyPath,
          model: [await packageOf('zh', '1.0.0'), await packageOf('en', '1.0.0')],
        },
        {},
      ),
      pino({ level: 'silent' }),
    );
    try {
      assert.equal(activeOf(server, 'zh'), '1.0.0');
      assert.equal(activeOf(server, 'en'), '1.0.0');
      assert.equal((await ocr(server, 'en')).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('fair share', () => {
  test('a flood on one model is refused past its own places, while the other model is admitted', async () => {
    const home = join(work, 'fair');
    const server = await serve(home, { maxInflight: '1', maxQueue: '2' });
    try {
      assert.equal((await upload(server, 'zh', '1.0.0')).status, 201);
      assert.equal((await upload(server, 'en', '1.0.0')).status, 201);
      // 12 at once on zh: 3 places (1 running, 2 waiting), the rest refused at once.
      const flood = Array.from({ length: 12 }, () => ocr(server, 'zh'));
      await new Promise((r) => setTimeout(r, 50));
      const other = await Promise.all([ocr(server, 'en'), ocr(server, 'en')]);
      const flooded = await Promise.all(flood);
      assert.deepEqual(
        other.map((a) => a.status),
        [200, 200],
        JSON.stringify(other.map((a) => a.body.error)),
      );
      const refused = flooded.filter((a) => a.status === 503);
      assert.ok(refused.length >= 6, `${refused.length} of 12 refused`);
      for (const a of refused) {
        assert.equal(a.body.error?.code, 'OVERLOADED');
        assert.match(a.body.error!.message, /for zh/);
      }
    } finally {
      await server.close();
    }
  });
});
