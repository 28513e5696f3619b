// test-needs: model
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import type { HotocrError } from '../src/errors.js';
import {
  InferenceThreads,
  type LoaderPackage,
  type OcrWorkerPool,
  type PoolOptions,
} from '../src/loaders/index.js';
import { readsAs, verifiedBundled, withDigests } from './helpers/bundled.js';
import { renderText } from './helpers/images.js';
import { crashOnNextMessage } from './helpers/threads.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

/** The inference threads these loads run on, as a server's own. */
const threads = new InferenceThreads();

const work = tempDir();

/** The bundled package as the server loads it: with the digests it was verified with. */
async function bundled(): Promise<LoaderPackage> {
  return withDigests(await verifiedBundled(join(work, 'home')));
}

// Threads are not kept: each test's pool starts its own, so the only inference threads
// running are its own (this file runs in a process of its own).
const options: PoolOptions = { workers: 2, intraOpThreads: 1, keepThreads: false };

const lines = ['Crash read 21', 'Crash read 22', 'Crash read 23', 'Crash read 24'];
const expected = lines.map((l) => l.replaceAll(' ', ''));
const readAll = (pool: OcrWorkerPool) => Promise.all(lines.map((l) => readsAs(pool, l)));

/** A logger whose lines land in `lines`, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: { msg: string; [k: string]: unknown }[] } {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('an inference thread that dies', () => {
  test('loses no read, and is replaced: reads go to the thread left, or wait for the new ones when none is', async () => {
    const pool = await threads.load(await bundled(), options);
    try {
      const lost = threads.lostThreads();
      const replaced = threads.replacedThreads();
      // One of the two threads dies with the first task it is sent of four reads on both.
      await crashOnNextMessage('ocr-worker', 1);
      assert.deepEqual(await readAll(pool), expected);
      assert.equal(threads.lostThreads() - lost, 1);
      await until(() => threads.replacedThreads() - replaced === 1, 'a new thread');

      // Both die at once (the new one among them): the reads wait for two new threads.
      await crashOnNextMessage('ocr-worker', 2);
      assert.deepEqual(await readAll(pool), expected);
      assert.equal(threads.lostThreads() - lost, 3);
      assert.equal(threads.replacedThreads() - replaced, 3);
      assert.deepEqual(await readAll(pool), expected);
    } finally {
      await pool.release();
    }
  });

  test('is replaced with the sessions shared: a version sharing them reads on it, and later ones share them', async () => {
    const pool = await threads.load(await bundled(), options);
    const twin = await threads.load(await bundled(), options);
    try {
      const replaced = threads.replacedThreads();
      await crashOnNextMessage('ocr-worker', 1);
      assert.deepEqual(await readAll(twin), expected);
      await until(() => threads.replacedThreads() - replaced === 1, 'a new thread');
      // The new thread holds both versions: each reads there, the other thread dying too.
      await crashOnNextMessage('ocr-worker', 1);
      assert.deepEqual(await readAll(pool), expected);
      await until(() => threads.replacedThreads() - replaced === 2, 'a second new thread');
      const shared = threads.sharedGraphSessions();
      const next = await threads.load(await bundled(), options);
      try {
        assert.equal(threads.sharedGraphSessions() - shared, 3);
        assert.deepEqual(await readAll(next), expected);
      } finally {
        await next.release();
      }
      assert.deepEqual(await readAll(twin), expected);
    } finally {
      await twin.release();
      await pool.release();
    }
  });

  test('without its graphs kept optimized it is not replaced: reads fail with INFERENCE_FAILED once no thread is left', async () => {
    // No digests: nothing is kept optimized for it, or shared.
    const pool = await threads.load(await verifiedBundled(join(work, 'home')), options);
    try {
      const replaced = threads.replacedThreads();
      assert.equal(pool.fault(), undefined);
      await crashOnNextMessage('ocr-worker', 1);
      assert.deepEqual(await readAll(pool), expected);
      assert.deepEqual(await readAll(pool), expected);
      assert.equal(pool.fault(), undefined, 'one thread left reads on');
      await crashOnNextMessage('ocr-worker', 1);
      await assert.rejects(
        readsAs(pool, lines[0]!),
        (error: HotocrError) =>
          error.code === 'INFERENCE_FAILED' &&
          /^Every inference thread of this version has stopped \(An inference thread crashed: a crash made by the test\)/.test(
            error.message,
          ),
      );
      assert.equal(threads.replacedThreads(), replaced);
      assert.match(pool.fault() ?? '', /^Every inference thread of this version has stopped/);
    } finally {
      await pool.release();
    }
  });

  test('on a server, when no thread is left and none is replaced: /readyz answers 503 with the cause', async () => {
    const log = capturingLogger();
    // onnxruntime-wasm keeps no optimized graphs: its threads are not replaced.
    const server = await startServer(
      readServeConfig(
        {
          port: '0',
          host: '127.0.0.1',
          data: join(work, 'server-wasm'),
          runtime: 'onnxruntime-wasm',
          keepThreads: false,
        },
        {},
      ),
      log.logger,
    );
    try {
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      const { name, version } = ((await ready.json()) as { model: { name: string; version: string } }).model;
      await crashOnNextMessage('ocr-worker', 2);
      const page = await renderText([lines[0]!]);
      const ocr = await fetch(`${server.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(ocr.status, 500);
      assert.equal(((await ocr.json()) as { error: { code: string } }).error.code, 'INFERENCE_FAILED');
      const notReady = await fetch(`${server.url}/readyz`);
      assert.equal(notReady.status, 503);
      const { error } = (await notReady.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'NOT_READY');
      assert.match(
        error.message,
        new RegExp(
          `^${name} ${version.replaceAll('.', '\\.')} is active but cannot read: Every inference thread of this version has stopped \\(An inference thread crashed: a crash made by the test\\)`,
        ),
      );
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the process itself is alive');
      const said = log.lines.map((l) => l.msg);
      assert.equal(said.filter((m) => m === 'inference thread lost').length, 2);
      assert.equal(said.filter((m) => m === 'inference thread not replaced').length, 2);
    } finally {
      await server.close();
    }
  });

  test('on a server: the requests on it are answered, /metrics counts the thread lost and replaced, the log says so', async () => {
    const log = capturingLogger();
    const server = await startServer(
      readServeConfig({ port: '0', host: '127.0.0.1', data: join(work, 'server') }, {}),
      log.logger,
    );
    try {
      const metric = async (name: string) => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
      };
      const lost = await metric('hotocr_inference_threads_lost_total');
      const replaced = await metric('hotocr_inference_threads_replaced_total');
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
      assert.equal((await metric('hotocr_inference_threads_lost_total')) - lost, 1);
      await until(
        async () => (await metric('hotocr_inference_threads_replaced_total')) > replaced,
        'a new thread',
      );
      assert.equal((await metric('hotocr_inference_threads_replaced_total')) - replaced, 1);
      const lostLines = log.lines.filter((l) => l.msg === 'inference thread lost');
      assert.equal(lostLines.length, 1);
      assert.match(String((lostLines[0]!.err as { message: string }).message), /a crash made by the test/);
      assert.equal(lostLines[0]!.level, 50, 'an error');
      assert.deepEqual(
        log.lines.filter((l) => l.msg.startsWith('inference thread replaced')).map((l) => l.versions),
        [1],
      );
    } finally {
      await server.close();
    }
  });
});
