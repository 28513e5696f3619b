// test-needs: model
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import sharp from 'sharp';
import WebSocket from 'ws';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { renderText } from './helpers/images.js';
import { serveProcess } from './helpers/serve-process.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();

/** OCR requests a server has admitted and not yet answered: running and waiting, from /metrics. */
async function admitted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) =>
    [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
  return value('hotocr_ocr_running') + value('hotocr_ocr_queue_depth');
}
let server: RunningServer;
let page: Buffer;

before(async () => {
  server = await startServer(
    readServeConfig({ port: '0', host: '127.0.0.1', data: join(work, 'home'), bodyLimit: '2000000' }, {}),
    pino({ level: 'silent' }),
  );
  page = await renderText(['Served over HTTP 42']);
});
after(async () => {
  await server?.close();
});

async function post(body: Buffer | string, type: string): Promise<Response> {
  return fetch(`${server.url}/v1/ocr`, { method: 'POST', headers: { 'content-type': type }, body });
}

describe('POST /v1/ocr', () => {
  test('answers an image with its lines, the model and the X-Model-Version header', async () => {
    const res = await post(page, 'image/png');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-model-version'), 'ppocr/4.0.0');
    const body = (await res.json()) as {
      model: unknown;
      lines: { text: string; score: number; box: number[][] }[];
      timings: { total: number; inference: number };
    };
    assert.deepEqual(body.model, { name: 'ppocr', version: '4.0.0' });
    assert.deepEqual(
      body.lines.map((l) => l.text.replace(/ /g, '')),
      ['ServedoverHTTP42'],
    );
    assert.equal(body.lines[0]!.box.length, 4);
    assert.ok(body.timings.total >= body.timings.inference);
  });

  test('takes JPEG, WebP and TIFF too', async () => {
    for (const [type, bytes] of [
      ['image/jpeg', await sharp(page).jpeg().toBuffer()],
      ['image/webp', await sharp(page).webp().toBuffer()],
      ['image/tiff', await sharp(page).tiff().toBuffer()],
    ] as const) {
      const res = await post(bytes, type);
      assert.equal(res.status, 200, type);
    }
  });

  test('refuses a content type that is not an image with 415', async () => {
    const res = await post('hello', 'text/plain');
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('refuses bytes that are not an image with 400 IMAGE_INVALID', async () => {
    const res = await post('definitely not a png', 'image/png');
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'IMAGE_INVALID');
  });

  test('refuses an empty body with 400', async () => {
    const res = await post(Buffer.alloc(0), 'image/png');
    assert.equal(res.status, 400);
  });

  test('refuses a body over the limit with 413', async () => {
    const res = await post(Buffer.alloc(2_100_000, 1), 'image/png');
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'BODY_TOO_LARGE');
  });
});

describe('probes and models', () => {
  test('is alive and ready once the model is active', async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
  });

  test('lists the active version with its hash and signer', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as {
      models: {
        name: string;
        versions: { version: string; state: string; sha256: string; signer: { kind: string } }[];
      }[];
    };
    assert.equal(body.models[0]!.name, 'ppocr');
    assert.equal(body.models[0]!.versions[0]!.state, 'active');
    assert.match(body.models[0]!.versions[0]!.sha256, /^[0-9a-f]{64}$/);
    assert.equal(body.models[0]!.versions[0]!.signer.kind, 'key');
  });

  test('answers an unknown route with a JSON 404', async () => {
    const res = await fetch(`${server.url}/v1/nothing`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  });
});

describe('the watched folder, end to end', () => {
  test('a package renamed into the folder goes live with no failed request; a bad one changes nothing', async () => {
    const home = join(work, 'watch-home');
    const models = join(work, 'models');
    const srv = await startServer(
      readServeConfig({ port: '0', host: '127.0.0.1', data: home, models, settleMs: '200' }, {}),
      pino({ level: 'silent' }),
    );
    try {
      const src = await writeBundledSource(join(work, 'src-4.1.0'), '4.1.0');
      const next = join(work, 'ppocr-4.1.0.zip');
      await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out: next });
      const statuses: number[] = [];
      const versions = new Set<string>();
      let stop = false;
      const load = (async () => {
        while (!stop) {
          const res = await fetch(`${srv.url}/v1/ocr`, {
            method: 'POST',
            headers: { 'content-type': 'image/png' },
            body: page,
          });
          statuses.push(res.status);
          versions.add(res.headers.get('x-model-version') ?? 'none');
          await res.arrayBuffer();
        }
      })();
      const metric = async (series: string) => {
        const text = await (await fetch(`${srv.url}/metrics`)).text();
        return Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      };
      const hits = 'hotocr_optimized_graph_lookups_total{result="hit"}';
      const misses = 'hotocr_optimized_graph_lookups_total{result="miss"}';
      const optimizedBefore = { hits: await metric(hits), misses: await metric(misses) };
      const sharedBefore = await metric('hotocr_graph_sessions_shared_total');
      await rename(next, join(models, 'ppocr-4.1.0.zip'));
      const deadline = Date.now() + 20_000;
      while (!versions.has('ppocr/4.1.0') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      stop = true;
      await load;
      assert.ok(versions.has('ppocr/4.1.0'), `versions seen: ${[...versions].join(', ')}`);
      assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `statuses: ${statuses.join(',')}`);
      // Its graphs are those of the version before: the server passed the verified digests,
      // and the new version shared the sessions of the version in service, opening none.
      assert.equal((await metric('hotocr_graph_sessions_shared_total')) - sharedBefore, 3);
      assert.equal(await metric(hits), optimizedBefore.hits);
      assert.equal(await metric(misses), optimizedBefore.misses);

      // Deleting the file of the version in service unloads nothing.
      await rm(join(models, 'ppocr-4.1.0.zip'));
      const refused = new Promise<string>((resolve) => {
        const off = srv.registry.on((event) => {
          if (event.type === 'rejected' && event.path.endsWith('junk.zip')) {
            off();
            resolve(event.code);
          }
        });
      });
      await writeFile(join(work, 'junk.zip'), 'not a package at all');
      await rename(join(work, 'junk.zip'), join(models, 'junk.zip'));
      assert.equal(await refused, 'ARCHIVE_INVALID');
      assert.equal(srv.registry.active()?.version, '4.1.0');
      const res = await fetch(`${srv.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(res.headers.get('x-model-version'), 'ppocr/4.1.0');
    } finally {
      await srv.close();
    }
  });
});

describe('hotocr serve', () => {
  test('refuses --model without --trust, and a bad port, before starting', () => {
    assert.throws(() => readServeConfig({ model: 'x.zip' }, {}), /--trust/);
    assert.throws(() => readServeConfig({ port: 'eighty' }, {}), /--port/);
    assert.equal(readServeConfig({}, { HOTOCR_PORT: '9999' }).port, 9999);
    assert.equal(readServeConfig({}, { HOTOCR_KEEP_WARM: '2' }).keepWarm, 2);
    assert.throws(() => readServeConfig({ keepWarm: '-1' }, {}), /--keep-warm/);
  });

  test('comes back after a restart on the version that was active, verified again', async () => {
    const data = join(work, 'restart-home');
    const config = readServeConfig({ port: '0', host: '127.0.0.1', data }, {});
    const first = await startServer(config, pino({ level: 'silent' }));
    const sha256 = first.registry.active()!.sha256;
    await first.close();
    await first.close();
    const second = await startServer(config, pino({ level: 'silent' }));
    try {
      const active = second.registry.active()!;
      assert.equal(active.sha256, sha256);
      assert.equal(active.source, 'restore');
      const res = await fetch(`${second.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(res.status, 200);
    } finally {
      await second.close();
    }
  });

  test('finishes in-flight requests on SIGTERM, closes event streams, and exits 0', async () => {
    const server = await serveProcess(['--data', join(work, 'home')]);
    const { url } = server;
    const events = new WebSocket(`${url.replace('http', 'ws')}/v1/events`);
    const streamClosed = new Promise<number>((resolve) => events.once('close', resolve));
    await new Promise((resolve) => events.once('open', resolve));
    const inflight = Array.from({ length: 4 }, () =>
      fetch(`${url}/v1/ocr`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: page }),
    );
    // Signalled once the server has admitted them (running or queued): they are in flight.
    await until(async () => (await admitted(url)) >= 1, 'requests in flight');
    server.child.kill('SIGTERM');
    const responses = await Promise.all(inflight);
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200],
    );
    assert.equal(await streamClosed, 1001);
    const code = await Promise.race([
      server.exited,
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref()),
    ]);
    if (code === 'hung') server.child.kill('SIGKILL');
    assert.equal(code, 0);
  });
});
