import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { readServeConfig } from '../src/config.js';
import type { HotocrError } from '../src/errors.js';
import {
  type LoaderPackage,
  lostInferenceThreads,
  OcrWorkerPool,
  type PoolOptions,
  sharedGraphSessions,
} from '../src/loaders/index.js';
import { startServer } from '../src/server/index.js';
import { readsAs, verifiedBundled, withDigests } from './helpers/bundled.js';
import { renderText } from './helpers/images.js';
import { crashOnNextMessage } from './helpers/threads.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();

async function bundled(): Promise<LoaderPackage> {
  return withDigests(await verifiedBundled(join(work, 'home')));
}

// Threads are not kept: each test's pool starts its own, so the only inference threads
// running are the pool's (this file runs in a process of its own).
const options: PoolOptions = { workers: 2, intraOpThreads: 1, keepThreads: false };

const lines = ['Crash read 21', 'Crash read 22', 'Crash read 23', 'Crash read 24'];
const expected = lines.map((l) => l.replaceAll(' ', ''));

describe('an inference thread that dies', () => {
  test('loses no read: its tasks go to the thread left, and reads fail with INFERENCE_FAILED once none is', async () => {
    const pool = await OcrWorkerPool.create(await bundled(), options);
    try {
      const lost = lostInferenceThreads();
      // One of the two threads dies with the first task it is sent of four reads on both.
      await crashOnNextMessage('ocr-worker', 1);
      assert.deepEqual(await Promise.all(lines.map((l) => readsAs(pool, l))), expected);
      assert.equal(lostInferenceThreads() - lost, 1);
      // Later reads go to the thread left only.
      assert.deepEqual(await Promise.all(lines.map((l) => readsAs(pool, l))), expected);

      await crashOnNextMessage('ocr-worker', 1);
      await assert.rejects(
        readsAs(pool, lines[0]!),
        (error: HotocrError) =>
          error.code === 'INFERENCE_FAILED' &&
          /^Every inference thread of this version has stopped \(An inference thread crashed: a crash made by the test\)/.test(
            error.message,
          ),
      );
      assert.equal(lostInferenceThreads() - lost, 2);
    } finally {
      await pool.release();
    }
  });

  test('is not shared: a version loaded after it opens sessions on threads of its own', async () => {
    const pool = await OcrWorkerPool.create(await bundled(), options);
    try {
      await crashOnNextMessage('ocr-worker', 1);
      assert.deepEqual(await Promise.all(lines.map((l) => readsAs(pool, l))), expected);
      const shared = sharedGraphSessions();
      const next = await OcrWorkerPool.create(await bundled(), options);
      try {
        assert.equal(sharedGraphSessions(), shared);
        assert.deepEqual(await Promise.all(lines.map((l) => readsAs(next, l))), expected);
      } finally {
        await next.release();
      }
      assert.equal(await readsAs(pool, lines[0]!), expected[0]);
    } finally {
      await pool.release();
    }
  });

  test('on a server: the requests on it are answered, and /metrics counts the thread lost', async () => {
    const server = await startServer(
      readServeConfig({ port: '0', host: '127.0.0.1', data: join(work, 'server') }, {}),
      pino({ level: 'silent' }),
    );
    try {
      const lost = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return Number(/^hotocr_inference_threads_lost_total (\S+)$/m.exec(text)?.[1]);
      };
      const before = await lost();
      const pages = await Promise.all(lines.map((l) => renderText([l])));
      await crashOnNextMessage('ocr-worker', 1);
      const answers = await Promise.all(
        pages.map((body) =>
          fetch(`${server.url}/v1/ocr`, { method: 'POST', headers: { 'content-type': 'image/png' }, body }),
        ),
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 200],
      );
      const texts = await Promise.all(
        answers.map(async (a) =>
          ((await a.json()) as { lines: { text: string }[] }).lines
            .map((l) => l.text.replaceAll(' ', ''))
            .join(''),
        ),
      );
      assert.deepEqual(texts, expected);
      assert.equal((await lost()) - before, 1);
    } finally {
      await server.close();
    }
  });
});
