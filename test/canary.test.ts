// test-needs: model
/**
 * Automatic canary rollback, end to end: a real server whose versions are run by a loader
 * plugin written here, so each version's behaviour (healthy, failing, slow) is chosen by the
 * test. A split sends half the traffic to a canary; the guard compares it with the active
 * version and ends the split when it is worse by more than the configured margin.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { keyFileSigner, pack } from '../src/pack/index.js';
import { renderText } from './helpers/images.js';
import { manifest, sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
const TOKEN = 'test-admin-token-0123456789abcdef';

/**
 * Versions 10.0.x answer at once; 10.1.x fail every other read after their warm-up (500
 * INFERENCE_FAILED); 10.2.x take 150 ms a read.
 */
const PLUGIN = `
export default {
  name: 'test-canary',
  supports: (m) => m.runtime === 'test-canary',
  metadata: () => ({}),
  async load(pkg) {
    const v = pkg.manifest.version;
    let reads = 0;
    return {
      async read(image) {
        reads++;
        if (v.startsWith('10.1.') && reads > 1 && reads % 2 === 0) throw new Error('canary broke');
        if (v.startsWith('10.2.')) await new Promise((r) => setTimeout(r, 150));
        const w = image.width, h = image.height;
        return { lines: [{ text: 'v' + v, score: 1, box: [[0, 0], [w, 0], [w, h], [0, h]] }] };
      },
      async release() {},
    };
  },
};
`;

interface RoutingEvent {
  type: string;
  reason?: string;
  split?: unknown[];
  rollback?: {
    cause: string;
    canary: { version: string; requests: number; errorRate: number; p99: number | null };
    stable: { version: string; requests: number; errorRate: number; p99: number | null };
  };
}

async function serve(home: string, extra: Record<string, unknown>): Promise<RunningServer> {
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  await writeFile(join(work, 'canary-plugin.mjs'), PLUGIN);
  return startServer(
    readServeConfig(
      {
        port: '0',
        host: '127.0.0.1',
        data: home,
        adminTokenFile: join(work, 'token'),
        loader: [join(work, 'canary-plugin.mjs')],
        ...extra,
      },
      {},
    ),
    pino({ level: 'silent' }),
  );
}

async function upload(
  server: RunningServer,
  home: string,
  version: string,
  activate: boolean,
): Promise<void> {
  const src = await sourceDir(join(work, `src-${home.length}-${version}`), {
    ...manifest({ version, runtime: 'test-canary' }),
    name: 'ppocr',
  });
  const out = join(work, `canary-${home.length}-${version}.zip`);
  await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out });
  const res = await fetch(`${server.url}/v1/models?activate=${activate}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
    body: await readFile(out),
  });
  assert.equal(res.status, 201, await res.text());
}

async function split(server: RunningServer, weights: Record<string, number>): Promise<void> {
  const res = await fetch(`${server.url}/v1/routing`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ppocr', split: weights }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function routing(server: RunningServer): Promise<{ split: { version: string }[] }> {
  return (await (await fetch(`${server.url}/v1/routing`)).json()) as { split: { version: string }[] };
}

/**
 * Sends requests one at a time, `count` of them, or with `untilSplitEnds` until the split ends
 * (the guard checks once a second; 60 s bounds a guard that never acts); returns the statuses.
 */
async function drive(
  server: RunningServer,
  page: Buffer,
  count: number,
  untilSplitEnds = false,
): Promise<Map<string, number[]>> {
  const byVersion = new Map<string, number[]>();
  const deadline = Date.now() + 60_000;
  for (let i = 0; untilSplitEnds ? Date.now() < deadline : i < count; i++) {
    const res = await fetch(`${server.url}/v1/ocr`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: page,
    });
    await res.arrayBuffer();
    const v = res.headers.get('x-model-version') ?? 'none';
    byVersion.set(v, [...(byVersion.get(v) ?? []), res.status]);
    if (untilSplitEnds && i % 10 === 9 && (await routing(server)).split.length === 0) break;
  }
  return byVersion;
}

async function listen(server: RunningServer): Promise<{ events: RoutingEvent[]; close(): void }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/events`);
  const events: RoutingEvent[] = [];
  ws.on('message', (data) => events.push(JSON.parse(String(data)) as RoutingEvent));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { events, close: () => ws.close() };
}

let page: Buffer;
before(async () => {
  page = await renderText(['Canary 7']);
});

describe('canary guard', () => {
  const home = join(work, 'guarded');
  let server: RunningServer;
  before(async () => {
    server = await serve(home, { canaryErrorMargin: '0.05', canaryP99Margin: '1', canaryMinRequests: '20' });
    await upload(server, home, '10.0.0', true);
  });
  after(() => server?.close());

  test('a canary failing half its requests is rolled back: the split ends, the event says why, the metric counts it', async () => {
    await upload(server, home, '10.1.0', false);
    const feed = await listen(server);
    try {
      await split(server, { '10.0.0': 50, '10.1.0': 50 });
      const seen = await drive(server, page, 0, true);
      assert.equal((await routing(server)).split.length, 0, 'the split is still on');
      const failed = seen.get('ppocr/10.1.0')!.filter((s) => s === 500).length;
      assert.ok(failed >= 10, `${failed} canary failures`);
      assert.ok(seen.get('ppocr/10.0.0')!.every((s) => s === 200));
      const rollback = feed.events.find((e) => e.type === 'routing' && e.rollback);
      assert.ok(rollback, JSON.stringify(feed.events.map((e) => e.type)));
      assert.equal(rollback.rollback!.cause, 'error-rate');
      assert.equal(rollback.rollback!.canary.version, '10.1.0');
      assert.equal(rollback.rollback!.stable.version, '10.0.0');
      assert.ok(rollback.rollback!.canary.requests >= 20);
      assert.ok(rollback.rollback!.canary.errorRate > 0.3);
      assert.equal(rollback.rollback!.stable.errorRate, 0);
      assert.match(rollback.reason!, /canary ppocr 10\.1\.0 rolled back: error rate .* against 0\.0%/);
      // Everything goes to the active version now; the canary stays loaded for a look.
      const after = await drive(server, page, 20);
      assert.deepEqual([...after.keys()], ['ppocr/10.0.0']);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(
        metrics,
        /hotocr_canary_rollbacks_total\{name="ppocr",version="10\.1\.0",cause="error-rate"\} 1/,
      );
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
        models: { versions: { version: string; state: string }[] }[];
      };
      assert.equal(models.models[0]!.versions.find((v) => v.version === '10.1.0')?.state, 'ready');
    } finally {
      feed.close();
    }
  });

  test('a canary far slower than the active version is rolled back on p99', async () => {
    await upload(server, home, '10.2.0', false);
    const feed = await listen(server);
    try {
      await split(server, { '10.0.0': 50, '10.2.0': 50 });
      await drive(server, page, 0, true);
      assert.equal((await routing(server)).split.length, 0, 'the split is still on');
      // The figures compared are the guard's own test (src/server/canary.test.ts), on a clock.
      const rollback = feed.events.find((e) => e.type === 'routing' && e.rollback);
      assert.equal(rollback?.rollback?.cause, 'p99');
      assert.equal(rollback.rollback.canary.version, '10.2.0');
    } finally {
      feed.close();
    }
  });

  test('a canary as good as the active version keeps its share', async () => {
    await upload(server, home, '10.0.1', false);
    await split(server, { '10.0.0': 50, '10.0.1': 50 });
    const seen = await drive(server, page, 200);
    assert.ok(seen.get('ppocr/10.0.1')!.length >= 50, 'the canary got too little traffic to judge');
    // Past minRequests on both, and as many checks as 200 requests took seconds: still split.
    assert.deepEqual(
      (await routing(server)).split.map((s) => s.version),
      ['10.0.0', '10.0.1'],
    );
  });
});

describe('without margins', () => {
  test('no guard: a failing canary keeps its share until a person ends the split', async () => {
    const home = join(work, 'unguarded');
    const server = await serve(home, {});
    try {
      await upload(server, home, '10.0.0', true);
      await upload(server, home, '10.1.0', false);
      await split(server, { '10.0.0': 50, '10.1.0': 50 });
      const seen = await drive(server, page, 100);
      assert.ok(seen.get('ppocr/10.1.0')!.filter((s) => s === 500).length >= 10);
      assert.equal((await routing(server)).split.length, 2);
    } finally {
      await server.close();
    }
  });

  test('margins that are not fractions stop the start with SETTING_INVALID', () => {
    for (const bad of ['-0.1', 'five', '', '2']) {
      assert.throws(
        () => readServeConfig({ canaryErrorMargin: bad }, {}),
        (e: { code?: string; message?: string }) =>
          e.code === 'SETTING_INVALID' && /--canary-error-margin/.test(e.message ?? ''),
        bad,
      );
    }
    assert.equal(readServeConfig({}, { HOTOCR_CANARY_P99_MARGIN: '0.5' }).canaryP99Margin, 0.5);
    assert.equal(readServeConfig({}, {}).canaryErrorMargin, undefined);
  });
});
