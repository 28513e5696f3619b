// test-needs: model
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { createApp } from '../src/server/index.js';
import { VERSION } from '../src/version.js';
import { renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
const home = join(work, 'home');
const TOKEN = 'test-admin-token-0123456789abcdef';
let server: RunningServer;
let page: Buffer;
const pkgs: Record<string, string> = {};

interface ErrorBody {
  error: { code: string; message: string };
}
interface VersionBody {
  name: string;
  version: string;
  state: string;
  sha256: string;
}

before(async () => {
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  server = await startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: home,
        adminTokenFile: join(work, 'token'),
        keepWarm: '1',
        uploadLimit: '40000000',
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  for (const version of ['4.1.0', '4.2.0', '4.3.0']) {
    const src = await writeBundledSource(join(work, `src-${version}`), version);
    pkgs[version] = join(work, `ppocr-${version}.zip`);
    await pack(src, { signer, out: pkgs[version] });
  }
  const foreign = await keygen({ type: 'ecdsa', out: join(work, 'foreign-key') });
  pkgs.foreign = join(work, 'ppocr-4.9.0-foreign.zip');
  await pack(await writeBundledSource(join(work, 'src-foreign'), '4.9.0'), {
    signer: await keyFileSigner(foreign.privateKeyPath),
    out: pkgs.foreign,
  });
  page = await renderText(['Admin API 7']);
});
after(async () => {
  await server?.close();
});

function call(
  method: string,
  path: string,
  options: {
    body?: RequestInit['body'];
    type?: string;
    token?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.type) headers['content-type'] = options.type;
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`${server.url}${path}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
}

async function errorOf(res: Response): Promise<string> {
  return ((await res.json()) as ErrorBody).error.code;
}

const upload = async (name: string, query = '') =>
  call('POST', `/v1/models${query}`, { body: await readFile(pkgs[name]!), type: 'application/zip' });

const ocr = (headers: Record<string, string> = {}) =>
  call('POST', '/v1/ocr', { body: page, type: 'image/png', token: null, headers });

/** A client of /v1/events that keeps every message. */
async function listen(): Promise<{ events: { type: string; [k: string]: unknown }[]; close(): void }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/events`);
  const events: { type: string; [k: string]: unknown }[] = [];
  ws.on('message', (data) => events.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { events, close: () => ws.close() };
}

async function uploadsLeft(): Promise<string[]> {
  return readdir(join(home, 'uploads')).catch(() => []);
}

describe('admin authentication', () => {
  test('an admin call without a token is 401, with a wrong one 403, and reads no body', async () => {
    const missing = await call('POST', '/v1/models', { body: 'x', type: 'application/zip', token: null });
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    assert.equal(await errorOf(missing), 'UNAUTHORIZED');
    const wrong = await call('POST', '/v1/models/ppocr/rollback', { token: 'not-the-admin-token-at-all' });
    assert.equal(wrong.status, 403);
    assert.equal(await errorOf(wrong), 'ADMIN_TOKEN_INVALID');
    const malformed = await call('PUT', '/v1/routing', {
      token: null,
      headers: { authorization: 'Basic abc' },
    });
    assert.equal(malformed.status, 401);
    assert.deepEqual(await uploadsLeft(), []);
  });

  test('with no token configured every admin call is refused with 403 and how to set one', async () => {
    const { app } = await createApp({
      registry: server.registry,
      logger: false,
      uploadsDir: join(work, 'u2'),
    });
    try {
      for (const [method, url] of [
        ['POST', '/v1/models'],
        ['PUT', '/v1/routing'],
        ['POST', '/v1/models/ppocr/rollback'],
        ['DELETE', '/v1/models/ppocr/versions/4.0.0'],
        ['POST', '/v1/admin/profile/heap'],
      ] as const) {
        const res = await app.inject({ method, url, headers: { authorization: `Bearer ${TOKEN}` } });
        assert.equal(res.statusCode, 403, url);
        const body = res.json() as ErrorBody;
        assert.equal(body.error.code, 'ADMIN_DISABLED');
        assert.match(body.error.message, /--admin-token-file/);
      }
      assert.equal((await app.inject({ method: 'GET', url: '/v1/models' })).statusCode, 200);
    } finally {
      await app.close();
    }
  });

  test('the token comes from a file, an environment variable or a flag, once, and must not be short', async () => {
    assert.equal(readServeConfig({}, { HOTOCR_ADMIN_TOKEN: TOKEN }).adminToken, TOKEN);
    assert.equal(readServeConfig({ adminTokenFile: join(work, 'token') }, {}).adminToken, TOKEN);
    assert.equal(readServeConfig({}, {}).adminToken, undefined);
    assert.throws(() => readServeConfig({ adminToken: 'short' }, {}), /at least 16/);
    assert.throws(
      () => readServeConfig({ adminToken: TOKEN }, { HOTOCR_ADMIN_TOKEN_FILE: join(work, 'token') }),
      /once/,
    );
    assert.throws(() => readServeConfig({ adminTokenFile: join(work, 'nope') }, {}), /Cannot read/);
  });
});

describe('uploads, activation, rollback, unload', () => {
  test('an upload is verified, loaded and activated; the event stream shows each step', async () => {
    const stream = await listen();
    try {
      await until(() => stream.events.length > 0, 'the snapshot');
      const snapshot = stream.events[0]!;
      assert.equal(snapshot.type, 'snapshot');
      assert.equal((snapshot.models as { active: string }[])[0]!.active, '4.0.0');

      const res = await upload('4.1.0');
      assert.equal(res.status, 201);
      const body = (await res.json()) as VersionBody;
      assert.equal(body.version, '4.1.0');
      assert.equal(body.state, 'active');
      assert.equal((await ocr()).headers.get('x-model-version'), 'ppocr/4.1.0');
      await until(() => stream.events.some((e) => e.type === 'activated'), 'activated');
      assert.deepEqual(
        stream.events.slice(1).map((e) => e.type),
        ['package-seen', 'verifying', 'verified', 'loading', 'ready', 'activated'],
      );
      for (const e of stream.events) assert.equal(typeof e.ts, 'string');
      const activated = stream.events.at(-1)!;
      assert.equal(activated.version, '4.1.0');
      assert.equal(activated.previous, '4.0.0');

      const again = await upload('4.1.0');
      assert.equal(again.status, 200, 'the same bytes again: nothing new');
      assert.deepEqual(await uploadsLeft(), []);
    } finally {
      stream.close();
    }
  });

  test('a multipart upload with ?activate=false is staged as ready', async () => {
    const form = new FormData();
    form.append(
      'package',
      new Blob([await readFile(pkgs['4.2.0']!)], { type: 'application/zip' }),
      'ppocr-4.2.0.zip',
    );
    const res = await call('POST', '/v1/models?activate=false', { body: form });
    assert.equal(res.status, 201);
    assert.equal(((await res.json()) as VersionBody).state, 'ready');
    assert.equal(server.registry.active()!.version, '4.1.0');
  });

  test('bad uploads are refused with their code, leave nothing behind and change nothing', async () => {
    const stream = await listen();
    try {
      const foreign = await upload('foreign');
      assert.equal(foreign.status, 422);
      assert.equal(await errorOf(foreign), 'KEY_UNTRUSTED');
      await until(() => stream.events.some((e) => e.type === 'rejected'), 'the rejection event');
      const rejected = stream.events.find((e) => e.type === 'rejected')!;
      assert.equal(rejected.code, 'KEY_UNTRUSTED');
      assert.equal(rejected.source, 'upload');

      const junk = await call('POST', '/v1/models', { body: 'not a zip at all', type: 'application/zip' });
      assert.equal(junk.status, 422);
      assert.equal(await errorOf(junk), 'ARCHIVE_INVALID');

      const empty = await call('POST', '/v1/models', { body: Buffer.alloc(0), type: 'application/zip' });
      assert.equal(empty.status, 400);
      assert.equal(await errorOf(empty), 'BODY_MISSING');

      const text = await call('POST', '/v1/models', { body: 'hello', type: 'text/plain' });
      assert.equal(text.status, 415);
      assert.equal(await errorOf(text), 'UNSUPPORTED_MEDIA_TYPE');

      const huge = await call('POST', '/v1/models', {
        body: Buffer.alloc(41_000_000),
        type: 'application/zip',
      });
      assert.equal(huge.status, 413);
      assert.equal(await errorOf(huge), 'PACKAGE_TOO_LARGE');

      // Without a Content-Length the limit is enforced while streaming.
      const chunks = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 45; i++) controller.enqueue(new Uint8Array(1_000_000));
          controller.close();
        },
      });
      const streamed = await fetch(`${server.url}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
        body: chunks,
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.equal(await errorOf(streamed), 'PACKAGE_TOO_LARGE');

      assert.equal(server.registry.active()!.version, '4.1.0');
      assert.equal((await ocr()).status, 200);
      assert.deepEqual(await uploadsLeft(), []);
    } finally {
      stream.close();
    }
  });

  test('activate, roll back and unload, with their errors', async () => {
    const stream = await listen();
    try {
      const activated = await call('POST', '/v1/models/ppocr/versions/4.2.0/activate');
      assert.equal(activated.status, 200);
      assert.equal(((await activated.json()) as VersionBody).state, 'active');
      assert.equal((await ocr()).headers.get('x-model-version'), 'ppocr/4.2.0');

      const unknown = await call('POST', '/v1/models/ppocr/versions/9.9.9/activate');
      assert.equal(unknown.status, 404);
      assert.equal(await errorOf(unknown), 'VERSION_NOT_FOUND');

      const back = await call('POST', '/v1/models/ppocr/rollback');
      assert.equal(back.status, 200);
      assert.equal(((await back.json()) as VersionBody).version, '4.1.0');
      assert.equal(server.registry.active()!.version, '4.1.0');

      const active = await call('DELETE', '/v1/models/ppocr/versions/4.1.0');
      assert.equal(active.status, 409);
      assert.equal(await errorOf(active), 'VERSION_ACTIVE');

      const unloaded = await call('DELETE', '/v1/models/ppocr/versions/4.2.0');
      assert.equal(unloaded.status, 200);
      assert.equal(((await unloaded.json()) as VersionBody).state, 'released');
      await until(
        () => stream.events.some((e) => e.type === 'released' && e.version === '4.2.0'),
        'released',
      );
      const types = stream.events.filter((e) => e.version === '4.2.0').map((e) => e.type);
      assert.deepEqual(types.slice(-2), ['draining', 'released']);

      const traversal = await call('DELETE', '/v1/models/..%2F..%2Fetc/versions/passwd');
      assert.equal(traversal.status, 404);
      assert.equal(await errorOf(traversal), 'VERSION_NOT_FOUND');
    } finally {
      stream.close();
    }
  });
});

describe('routing', () => {
  test('a split must add up to 100 and name versions that can serve', async () => {
    assert.equal((await upload('4.3.0', '?activate=false')).status, 201);
    const put = (body: unknown, token?: string | null) =>
      call('PUT', '/v1/routing', { body: JSON.stringify(body), type: 'application/json', token });
    assert.equal((await put({ split: { '4.1.0': 90, '4.3.0': 10 } }, null)).status, 401);
    for (const [body, code] of [
      [{ split: { '4.1.0': 90, '4.3.0': 5 } }, 'ROUTING_INVALID'],
      [{ split: { '4.1.0': 90, '7.0.0': 10 } }, 'ROUTING_INVALID'],
      [{ split: { '4.1.0': 90, '4.2.0': 10 } }, 'ROUTING_INVALID'],
      [{ split: { '4.1.0': 'ninety', '4.3.0': 10 } }, 'REQUEST_INVALID'],
      [{ split: { '4.1.0': 190, '4.3.0': -90 } }, 'REQUEST_INVALID'],
      [{ split: { '4.1.0': 90, '4.3.0': 10 }, extra: true }, 'REQUEST_INVALID'],
      [{ weights: {} }, 'REQUEST_INVALID'],
    ] as const) {
      const res = await put(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(await errorOf(res), code, JSON.stringify(body));
    }
    const notJson = await call('PUT', '/v1/routing', { body: '{"split":', type: 'application/json' });
    assert.equal(notJson.status, 400);
    assert.deepEqual(((await (await call('GET', '/v1/routing')).json()) as { split: unknown[] }).split, []);
  });

  test('90/10 over 10,000 decisions within 1.5 points; users stick; pins are honoured when allowed', async () => {
    const stream = await listen();
    try {
      const res = await call('PUT', '/v1/routing', {
        body: JSON.stringify({ split: { '4.1.0': 90, '4.3.0': 10 } }),
        type: 'application/json',
      });
      assert.equal(res.status, 200);
      const view = (await res.json()) as { split: { version: string; weight: number }[]; active: string };
      assert.deepEqual(view.split, [
        { version: '4.1.0', weight: 90 },
        { version: '4.3.0', weight: 10 },
      ]);
      await until(() => stream.events.some((e) => e.type === 'routing'), 'the routing event');

      const share = (decide: (i: number) => string | undefined) => {
        let canary = 0;
        for (let i = 0; i < 10_000; i++) if (decide(i) === '4.3.0') canary++;
        return canary / 100;
      };
      const byUser = share((i) => server.router.decide(`user-${i}`));
      const anonymous = share(() => server.router.decide(undefined));
      assert.ok(Math.abs(byUser - 10) <= 1.5, `users: ${byUser}% to the canary`);
      assert.ok(Math.abs(anonymous - 10) <= 1.5, `anonymous: ${anonymous}% to the canary`);
      for (let i = 0; i < 1000; i++)
        assert.equal(server.router.decide(`user-${i}`), server.router.decide(`user-${i}`));

      // Over HTTP: each user keeps one version.
      for (const user of ['alice', 'bob', 'carol', 'dave']) {
        const seen = new Set<string | null>();
        for (let i = 0; i < 4; i++)
          seen.add((await ocr({ 'x-user-id': user })).headers.get('x-model-version'));
        assert.equal(seen.size, 1, `${user} saw ${[...seen].join(', ')}`);
        assert.equal([...seen][0], `ppocr/${server.router.decide(user)}`);
      }

      const refused = await ocr({ 'x-model-version': 'ppocr/4.3.0' });
      assert.equal(refused.status, 403);
      assert.equal(await errorOf(refused), 'PINNING_DISABLED');
      await call('PUT', '/v1/routing', {
        body: JSON.stringify({ split: { '4.1.0': 90, '4.3.0': 10 }, allowPinning: true }),
        type: 'application/json',
      });
      for (let i = 0; i < 5; i++) {
        const pinned = await ocr({ 'x-model-version': 'ppocr/4.3.0', 'x-user-id': `user-${i}` });
        assert.equal(pinned.headers.get('x-model-version'), 'ppocr/4.3.0');
      }
      const missing = await ocr({ 'x-model-version': 'ppocr/8.8.8' });
      assert.equal(missing.status, 404);

      // Unloading a version in the split ends the split, and says so.
      assert.equal((await call('DELETE', '/v1/models/ppocr/versions/4.3.0')).status, 200);
      const after = (await (await call('GET', '/v1/routing')).json()) as { split: unknown[] };
      assert.deepEqual(after.split, []);
      await until(
        () => stream.events.filter((e) => e.type === 'routing').length >= 3,
        'the routing event for the unload',
      );
      assert.match(
        String(stream.events.filter((e) => e.type === 'routing').at(-1)!.reason),
        /released|draining/,
      );
    } finally {
      stream.close();
    }
  });
});

describe('metrics', () => {
  const counter = (text: string, line: string) => {
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found ? Number(found.slice(line.length + 1)) : 0;
  };

  test('a rejection and a swap move their counters; gauges show the active version', async () => {
    const before = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal((await upload('foreign')).status, 422);
    assert.equal((await call('POST', '/v1/models/ppocr/versions/9.9.9/activate')).status, 404);
    assert.equal((await call('POST', '/v1/models/ppocr/rollback')).status, 200);
    assert.equal((await ocr()).status, 200);
    const res = await fetch(`${server.url}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const rejections = 'hotocr_package_rejections_total{reason="KEY_UNTRUSTED"}';
    assert.equal(counter(text, rejections) - counter(before, rejections), 1);
    const swaps = 'hotocr_model_swaps_total{name="ppocr"}';
    assert.equal(counter(text, swaps) - counter(before, swaps), 1);
    const active = server.registry.active()!;
    assert.ok(
      text.includes(
        `hotocr_active_model_info{name="ppocr",version="${active.version}",sha256="${active.sha256}"} 1`,
      ),
    );
    const ok = `hotocr_ocr_requests_total{name="ppocr",version="ppocr/${active.version}",status="200"}`;
    assert.ok(counter(text, ok) >= 1, ok);
    for (const name of [
      'hotocr_package_load_seconds_bucket{le="+Inf",name="ppocr",stage="verify"}',
      'hotocr_package_load_seconds_bucket{le="+Inf",name="ppocr",stage="load"}',
      'hotocr_package_load_seconds_bucket{le="+Inf",name="ppocr",stage="warmup"}',
      'hotocr_package_load_seconds_bucket{le="+Inf",name="ppocr",stage="switch"}',
      `hotocr_model_inflight{name="ppocr",version="${active.version}"}`,
      'hotocr_ocr_queue_depth{name="ppocr"}',
      'nodejs_eventloop_lag_seconds',
      'process_resident_memory_bytes',
    ])
      assert.ok(
        text.split('\n').some((l) => l.startsWith(`${name} `)),
        name,
      );
    assert.match(text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
    // The bundled model's three graphs are kept optimized: the server passed their digests.
    assert.ok(counter(text, 'hotocr_optimized_graphs') >= 3, 'optimized graphs kept');
    assert.ok(counter(text, 'hotocr_optimized_graph_bytes') > 1_000_000, 'their bytes');
    const misses = 'hotocr_optimized_graph_lookups_total{result="miss"}';
    assert.ok(counter(text, misses) >= 3, misses);
    // The rollback loaded the version before again, from its kept copy: its three graphs are
    // those of the version in service, whose sessions it shared (no graph opened or looked up).
    const shared = 'hotocr_graph_sessions_shared_total';
    assert.equal(counter(text, shared) - counter(before, shared), 3, shared);
    const hits = 'hotocr_optimized_graph_lookups_total{result="hit"}';
    assert.equal(counter(text, hits) - counter(before, hits), 0, hits);
  });
});

describe('OCR requests', () => {
  test('takes a multipart file, and refuses a multipart body without one or with the wrong type', async () => {
    const form = new FormData();
    form.append('image', new Blob([page], { type: 'image/png' }), 'page.png');
    const res = await call('POST', '/v1/ocr', { body: form, token: null });
    assert.equal(res.status, 200);
    const lines = ((await res.json()) as { lines: { text: string }[] }).lines;
    assert.deepEqual(
      lines.map((l) => l.text.replace(/ /g, '')),
      ['AdminAPI7'],
    );
    const text = new FormData();
    text.append('image', new Blob(['hello'], { type: 'text/plain' }), 'page.txt');
    const wrong = await call('POST', '/v1/ocr', { body: text, token: null });
    assert.equal(wrong.status, 415);
    const none = new FormData();
    none.append('note', 'no file here');
    const missing = await call('POST', '/v1/ocr', { body: none, token: null });
    assert.equal(missing.status, 400);
    assert.equal(await errorOf(missing), 'BODY_MISSING');
  });

  test('echoes a sane X-Request-Id and makes one up otherwise', async () => {
    const given = await ocr({ 'x-request-id': 'trace-42.a' });
    assert.equal(given.headers.get('x-request-id'), 'trace-42.a');
    const bad = await ocr({ 'x-request-id': 'bad id with spaces' });
    assert.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  test('past the queue a request is refused at once with 503 and Retry-After; the rest are served', async () => {
    const { app, admission } = await createApp({
      registry: server.registry,
      logger: false,
      uploadsDir: join(work, 'u3'),
      maxInflight: 1,
      maxQueue: 2,
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          app.inject({
            method: 'POST',
            url: '/v1/ocr',
            headers: { 'content-type': 'image/png' },
            body: page,
          }),
        ),
      );
      const statuses = results.map((r) => r.statusCode);
      assert.equal(statuses.filter((s) => s === 200).length, 3, statuses.join(','));
      for (const r of results.filter((x) => x.statusCode !== 200)) {
        assert.equal(r.statusCode, 503);
        assert.equal(r.headers['retry-after'], '1');
        assert.equal((r.json() as ErrorBody).error.code, 'OVERLOADED');
      }
      assert.equal(admission.admitted, 0);
    } finally {
      await app.close();
    }
  });

  test('a request past its timeout is answered 503 TIMEOUT and its lease still ends', async () => {
    const big = await renderText(
      Array.from({ length: 14 }, (_, i) => `Line ${i} of a long page that takes a while to read`),
    );
    const { app, admission } = await createApp({
      registry: server.registry,
      logger: false,
      uploadsDir: join(work, 'u4'),
      maxInflight: 1,
      maxQueue: 8,
      requestTimeoutMs: 100,
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 3 }, () =>
          app.inject({ method: 'POST', url: '/v1/ocr', headers: { 'content-type': 'image/png' }, body: big }),
        ),
      );
      for (const r of results) {
        assert.equal(r.statusCode, 503);
        assert.equal((r.json() as ErrorBody).error.code, 'TIMEOUT');
      }
      await until(() => admission.running === 0, 'the running read to end');
      assert.equal(server.registry.active()!.inflight, 0);
    } finally {
      await app.close();
    }
  });

  test('clients that go away free their place and their lease', async () => {
    const big = await renderText(Array.from({ length: 14 }, (_, i) => `Client ${i} left before the answer`));
    const hot = await createApp({
      registry: server.registry,
      logger: false,
      uploadsDir: join(work, 'u5'),
      maxInflight: 1,
      maxQueue: 8,
    });
    const url = await hot.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const controllers = Array.from({ length: 6 }, () => new AbortController());
      const requests = controllers.map((c) =>
        fetch(`${url}/v1/ocr`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: big,
          signal: c.signal,
        }).catch((e: Error) => e.name),
      );
      await until(() => hot.admission.admitted === 6, 'all six admitted');
      for (const c of controllers) c.abort();
      assert.deepEqual(await Promise.all(requests), Array(6).fill('AbortError'));
      await until(() => hot.admission.admitted === 0 && hot.admission.running === 0, 'every place freed');
      assert.equal(server.registry.active()!.inflight, 0);
      const res = await fetch(`${url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(res.status, 200);
    } finally {
      await hot.app.close();
    }
  });
});

describe('OpenAPI and profiling', () => {
  test('/openapi.json describes every route, with binary bodies and admin security', async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      openapi: string;
      info: { version: string };
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, unknown> }; security?: unknown }>
      >;
    };
    assert.equal(doc.openapi, '3.0.3');
    assert.equal(doc.info.version, VERSION, 'the version package.json holds');
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    for (const route of [
      'POST /v1/ocr',
      'GET /v1/models',
      'POST /v1/models',
      'POST /v1/models/{name}/versions/{version}/activate',
      'POST /v1/models/{name}/rollback',
      'DELETE /v1/models/{name}/versions/{version}',
      'GET /v1/routing',
      'PUT /v1/routing',
      'GET /v1/events',
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
      'POST /v1/admin/profile/cpu',
      'POST /v1/admin/profile/heap',
    ])
      assert.ok(routes.includes(route), `${route} in ${routes.join(', ')}`);
    assert.ok(doc.paths['/v1/ocr']!.post!.requestBody!.content['image/png']);
    assert.ok(doc.paths['/v1/models']!.post!.requestBody!.content['application/zip']);
    assert.deepEqual(doc.paths['/v1/routing']!.put!.security, [{ bearer: [] }]);
  });

  test('a CPU profile and a heap snapshot, for admins only', async () => {
    assert.equal((await call('POST', '/v1/admin/profile/cpu?seconds=0.2', { token: null })).status, 401);
    const bad = await call('POST', '/v1/admin/profile/cpu?seconds=9999');
    assert.equal(bad.status, 400);
    assert.equal(await errorOf(bad), 'REQUEST_INVALID');
    const cpu = await call('POST', '/v1/admin/profile/cpu?seconds=0.3');
    assert.equal(cpu.status, 200);
    assert.match(cpu.headers.get('content-disposition') ?? '', /\.cpuprofile"$/);
    const profile = (await cpu.json()) as { nodes: unknown[]; startTime: number; endTime: number };
    assert.ok(profile.nodes.length > 0 && profile.endTime > profile.startTime);
    const heap = await call('POST', '/v1/admin/profile/heap');
    assert.equal(heap.status, 200);
    const snapshot = (await heap.json()) as { snapshot: { node_count: number } };
    assert.ok(snapshot.snapshot.node_count > 1000);
  });
});

describe('the event stream', () => {
  test('a plain GET is told to upgrade; clients past the limit are turned away; a slow one is dropped', async () => {
    const plain = await fetch(`${server.url}/v1/events`);
    assert.equal(plain.status, 426);
    assert.equal(await errorOf(plain), 'UPGRADE_REQUIRED');

    const { app, router } = await createApp({
      registry: server.registry,
      logger: false,
      uploadsDir: join(work, 'u6'),
      events: { maxClients: 2, maxBufferedBytes: 256 * 1024 },
    });
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
    const connect = async () => {
      const ws = new WebSocket(`${url}/v1/events`);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      return { ws, closed };
    };
    try {
      const slow = await connect();
      const reader = await connect();
      let read = 0;
      reader.ws.on('message', () => read++);
      const third = await connect();
      assert.equal(await third.closed, 1013);

      slow.ws.pause();
      // Bursts paced on the reading client, which keeps up; the paused one falls ever further behind.
      let sent = 0;
      for (let burst = 0; burst < 250; burst++) {
        for (let i = 0; i < 200; i++) void router.update({ split: {} });
        sent += 200;
        await until(() => read >= sent, 'the reading client to keep up');
      }
      slow.ws.resume();
      assert.ok([1008, 1006].includes(await slow.closed), 'the slow client is dropped');
      await until(() => read > 1000, 'the reading client keeps receiving');
      assert.equal(reader.ws.readyState, WebSocket.OPEN);
      reader.ws.close();
    } finally {
      await app.close();
    }
  });
});

describe('a production start', () => {
  test('with --trust alone it is not ready until a package arrives, then serves it', async () => {
    const keys = await keygen({ type: 'rsa', bits: 2048, out: join(work, 'prod-key') });
    const pkg = join(work, 'prod-5.0.0.zip');
    await pack(await writeBundledSource(join(work, 'src-prod'), '5.0.0'), {
      signer: await keyFileSigner(keys.privateKeyPath),
      out: pkg,
    });
    const quiet = pino({ level: 'silent' });
    const base = { port: '0', host: '127.0.0.1', trust: keys.publicKeyPath };
    // Refused as the settings are read, before anything starts.
    assert.throws(() => readServeConfig({ ...base, data: join(work, 'prod-none') }, {}), /--models DIR/);
    const data = join(work, 'prod-home');
    const prod = await startServer(readServeConfig({ ...base, data, adminToken: TOKEN }, {}), quiet);
    try {
      const ready = await fetch(`${prod.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(await errorOf(ready), 'NOT_READY');
      const early = await fetch(`${prod.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(early.status, 503);
      assert.ok(early.headers.get('retry-after'));
      const up = await fetch(`${prod.url}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
        body: await readFile(pkg),
      });
      assert.equal(up.status, 201);
      assert.equal((await fetch(`${prod.url}/readyz`)).status, 200);
      const res = await fetch(`${prod.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(res.headers.get('x-model-version'), 'ppocr/5.0.0');
      assert.deepEqual(await readdir(data).then((names) => names.includes('dev-key')), false);
    } finally {
      await prod.close();
    }
  });
});
