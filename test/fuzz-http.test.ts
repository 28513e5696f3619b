// test-needs: model
/**
 * Fuzzing the HTTP surface of a real server: mutated images, wrong content types, huge
 * headers, slow clients, a crowd of event-stream clients, invalid routing bodies and hostile
 * route parameters. Every answer must be a clear error (a 4xx with a stable code), never a
 * 5xx, and the server must keep reading pages throughout.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import sharp from 'sharp';
import WebSocket from 'ws';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { renderText } from './helpers/images.js';
import { prng } from './helpers/random.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const SEED = Number(process.env.HOTOCR_FUZZ_SEED ?? 20261125);
const work = tempDir();
const home = join(work, 'home');
const TOKEN = 'test-admin-token-0123456789abcdef';
let server: RunningServer;
let port: number;
let page: Buffer;

const r = prng(SEED);
const int = (n: number) => Math.floor(r() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

before(async () => {
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  server = await startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: home,
        adminTokenFile: join(work, 'token'),
        bodyLimit: '3000000',
        headersTimeoutMs: '1000',
        requestTimeoutMs: '4000',
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
  port = Number(new URL(server.url).port);
  page = await renderText(['Fuzz 2026']);
});
after(() => server?.close());

interface ErrorBody {
  error?: { code: string; message: string };
}

/** Sends a request and checks the answer is a success or a clear client error. */
async function expectClear(
  what: string,
  init: RequestInit & { path?: string },
  allowed: readonly number[],
): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${server.url}${init.path ?? '/v1/ocr'}`, init);
  const text = await res.text();
  assert.ok(allowed.includes(res.status), `${what}: status ${res.status} ${text.slice(0, 300)}`);
  if (res.status >= 400) {
    const body = JSON.parse(text) as ErrorBody;
    assert.match(body.error?.code ?? '', /^[A-Z_]+$/, `${what}: no error code in ${text.slice(0, 200)}`);
    assert.ok((body.error?.message.length ?? 0) > 10, `${what}: no sentence`);
    return { status: res.status, code: body.error!.code };
  }
  return { status: res.status };
}

async function stillReads(): Promise<void> {
  const res = await fetch(`${server.url}/v1/ocr`, {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: page,
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { lines: { text: string }[] };
  assert.equal(body.lines.map((l) => l.text.replace(/\s/g, '')).join(''), 'Fuzz2026');
}

/** An HTTP request whose path goes out exactly as given. */
function rawHttp(
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw socket, for what fetch will not send. Resolves with everything the server said, when it closes. */
function rawExchange(payload: Buffer | string, waitMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${waitMs} ms; got ${JSON.stringify(got.slice(0, 200))}`));
    }, waitMs);
    socket.on('data', (d) => {
      got += d.toString('latin1');
      // One answer is enough: stop at the end of its headers plus a little body.
      if (/\r\n\r\n/.test(got)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.on('error', () => {});
    socket.write(payload);
  });
}

describe('images', () => {
  test('mutated PNG, JPEG, WebP and TIFF bodies get 200 or a clear 4xx, never a 5xx', async () => {
    const small = await renderText(['ab 12']);
    const formats: [string, Buffer][] = [
      ['image/png', small],
      ['image/jpeg', await sharp(small).jpeg().toBuffer()],
      ['image/webp', await sharp(small).webp().toBuffer()],
      ['image/tiff', await sharp(small).tiff().toBuffer()],
    ];
    const codes = new Map<string, number>();
    const cases = 160;
    for (let i = 0; i < cases; i += 2) {
      await Promise.all(
        [0, 1].map(async () => {
          const [type, original] = pick(formats);
          const bytes = Buffer.from(original);
          const how = int(3);
          let body: Buffer = bytes;
          if (how === 0) for (let k = 0; k < 1 + int(16); k++) bytes[int(bytes.length)] = int(256);
          else if (how === 1) body = bytes.subarray(0, int(bytes.length));
          else
            body = Buffer.concat([
              bytes.subarray(0, 64),
              Buffer.alloc(int(2000), int(256)),
              bytes.subarray(64),
            ]);
          const { status, code } = await expectClear(
            `${type} mutation ${how}`,
            { method: 'POST', headers: { 'content-type': type }, body },
            [200, 400, 413, 415],
          );
          const key = code ?? String(status);
          codes.set(key, (codes.get(key) ?? 0) + 1);
        }),
      );
    }
    console.log(
      `fuzz-http images: ${cases} cases (seed ${SEED}): ${JSON.stringify(Object.fromEntries(codes))}`,
    );
    for (const code of codes.keys())
      assert.ok(
        ['200', 'IMAGE_INVALID', 'IMAGE_UNSUPPORTED', 'IMAGE_TOO_SMALL', 'BODY_MISSING'].includes(code),
        code,
      );
    // A decompression bomb: a valid PNG header declaring 60000 x 60000 pixels.
    const bomb = Buffer.from(small);
    bomb.writeUInt32BE(60000, 16);
    bomb.writeUInt32BE(60000, 20);
    const { code } = await expectClear(
      'bomb',
      { method: 'POST', headers: { 'content-type': 'image/png' }, body: bomb },
      [400, 413],
    );
    assert.ok(code === 'IMAGE_TOO_LARGE' || code === 'IMAGE_INVALID', code);
    await stillReads();
  });

  test('wrong content types, empty and oversized bodies get a clear 4xx', async () => {
    const types = [
      'text/plain',
      'application/json',
      'image/gif',
      'image/svg+xml',
      'multipart/form-data',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      '',
      'image/pngx',
      'x'.repeat(2000),
      ';;;',
    ];
    for (const type of types) {
      await expectClear(
        `content type ${JSON.stringify(type.slice(0, 40))}`,
        { method: 'POST', headers: type ? { 'content-type': type } : {}, body: page },
        [400, 415],
      );
    }
    await expectClear('empty', { method: 'POST', headers: { 'content-type': 'image/png' }, body: '' }, [400]);
    await expectClear(
      'oversized',
      { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.alloc(3_500_000) },
      [413],
    );
    await stillReads();
  });
});

describe('the protocol', () => {
  test('huge headers, a huge URL and garbage requests are answered or closed, and the server stays up', async () => {
    const huge = await rawExchange(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
    );
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const many = Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    assert.match(await rawExchange(`GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`), /^HTTP\/1\.1 431 /);
    assert.match(
      await rawExchange(`GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      /^HTTP\/1\.1 (414|431) /,
    );
    for (let i = 0; i < 40; i++) {
      const junk = Buffer.alloc(1 + int(300));
      for (let k = 0; k < junk.length; k++) junk[k] = int(256);
      const answer = await rawExchange(Buffer.concat([junk, Buffer.from('\r\n\r\n')]));
      assert.ok(answer === '' || /^HTTP\/1\.1 4\d\d /.test(answer), JSON.stringify(answer.slice(0, 100)));
    }
    assert.match(
      await rawExchange(
        'POST /v1/ocr HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
      ),
      /^HTTP\/1\.1 400 /,
    );
    await stillReads();
  });

  test('slow clients (slowloris) are dropped after the headers timeout while others are served', async () => {
    const sockets: Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 200; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => closed++);
      s.write('POST /v1/ocr HTTP/1.1\r\nHost: x\r\n');
      sockets.push(s);
    }
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write('X-Slow: 1\r\n');
    }, 200);
    try {
      // A normal request is answered while the slow clients drip their headers.
      await stillReads();
      await until(() => closed === sockets.length, `every slow client dropped (${closed} so far)`, 30_000);
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
    // A body sent a byte at a time holds its place only until the request timeout.
    const slowBody = connect(port, '127.0.0.1');
    slowBody.on('error', () => {});
    let answer = '';
    slowBody.on('data', (d) => {
      answer += d.toString();
    });
    slowBody.write(
      'POST /v1/ocr HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n',
    );
    const bodyDrip = setInterval(() => slowBody.write('x'), 100);
    try {
      for (let i = 0; i < 100 && !/\r\n\r\n/.test(answer) && !slowBody.destroyed; i++)
        await new Promise((res) => setTimeout(res, 100));
      assert.match(answer, /^HTTP\/1\.1 408 /, `slow body: ${JSON.stringify(answer.slice(0, 200))}`);
      assert.match(answer, /BODY_TIMEOUT/);
    } finally {
      clearInterval(bodyDrip);
      slowBody.destroy();
    }
    await stillReads();
  });

  test('300 event-stream clients at once each get the snapshot; the server keeps serving; they leave cleanly', async () => {
    const wsUrl = `${server.url.replace('http', 'ws')}/v1/events`;
    const open = (): Promise<{ ws: WebSocket; first: { type: string } }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        ws.once('message', (data) => resolve({ ws, first: JSON.parse(data.toString()) as { type: string } }));
        ws.once('error', reject);
      });
    const clients = await Promise.all(Array.from({ length: 300 }, open));
    try {
      for (const c of clients) assert.equal(c.first.type, 'snapshot');
      await stillReads();
    } finally {
      await Promise.all(
        clients.map(
          (c) =>
            new Promise<void>((resolve) => {
              c.ws.once('close', () => resolve());
              c.ws.close();
            }),
        ),
      );
    }
    const again = await open();
    assert.equal(again.first.type, 'snapshot');
    again.ws.close();
  });
});

describe('the management API', () => {
  const admin = { authorization: `Bearer ${TOKEN}` };

  test('random routing bodies are refused with 400 and leave the routing as it was', async () => {
    const before = await (await fetch(`${server.url}/v1/routing`)).text();
    const values = (): unknown =>
      pick([
        () => null,
        () => int(1000) - 500,
        () => r() * 1e308,
        () => 'x'.repeat(int(50)),
        () => [],
        () => ({}),
        () => ({ split: { '4.0.0': int(200) - 50 } }),
        () => ({ split: { '4.0.0': 90, '9.9.9': 10 } }),
        () => ({ split: { '../../etc': 100 } }),
        () => ({ split: { '4.0.0': 50.5, '4.0.1': 49.5 } }),
        () => ({ split: [] }),
        () => ({ allowPinning: 'yes' }),
        () => ({ model: { $ne: 1 }, split: {} }),
        () => ({ __proto__: { split: { '4.0.0': 100 } } }),
        () => ({ constructor: { prototype: { polluted: true } } }),
        () => ({ split: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`1.0.${i}`, 0.5])) }),
      ])();
    for (let i = 0; i < 150; i++) {
      const raw = r() < 0.15 ? '{"split": {"4.0.0": 10' : JSON.stringify(values());
      await expectClear(
        `routing body ${raw.slice(0, 80)}`,
        {
          path: '/v1/routing',
          method: 'PUT',
          headers: { ...admin, 'content-type': 'application/json' },
          body: raw,
        },
        [400, 404],
      );
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(await (await fetch(`${server.url}/v1/routing`)).text(), before);
    await stillReads();
  });

  test('hostile route parameters are a clear 4xx and touch no file', async () => {
    const files = async () => (await readdir(home, { recursive: true })).sort();
    const before = await files();
    const evil = [
      '..',
      '../..',
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e%2f%2e%2e',
      '..\\..\\windows',
      '%00',
      'ppocr%00.zip',
      '%F0%9F%92%A3',
      '%ff%fe',
      'a'.repeat(5000),
      '%252e%252e',
      'ppocr/../../state.json',
    ];
    for (const name of evil) {
      for (const [method, path] of [
        ['POST', `/v1/models/${name}/versions/4.0.0/activate`],
        ['POST', `/v1/models/ppocr/versions/${name}/activate`],
        ['DELETE', `/v1/models/ppocr/versions/${name}`],
        ['DELETE', `/v1/models/${name}/versions/${name}`],
        ['POST', `/v1/models/${name}/rollback`],
        ['GET', `/v1/models/${name}`],
      ] as const) {
        // Sent as written: fetch would resolve the dots before they reached the server.
        const { status, text } = await rawHttp(method, path, admin);
        const what = `${method} ${path.slice(0, 100)}`;
        assert.ok([400, 404, 405, 409, 414].includes(status), `${what}: ${status} ${text.slice(0, 200)}`);
        assert.match((JSON.parse(text) as ErrorBody).error?.code ?? '', /^[A-Z_]+$/, what);
      }
    }
    assert.deepEqual(await files(), before);
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
      models: { active: string }[];
    };
    assert.equal(models.models[0]?.active, '4.0.0');
    await stillReads();
  });
});
