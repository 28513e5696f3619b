// test-needs: model
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import type { HotocrError } from '../src/errors.js';
import { canRestorePriority, InferenceThreads } from '../src/loaders/index.js';
import { decodeImage } from '../src/ocr/index.js';
import { keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { verifiedBundled } from './helpers/bundled.js';
import { renderText } from './helpers/images.js';
import { atNice } from './helpers/threads.js';
import { tempDir } from './helpers/tmp.js';

/** The inference threads these loads run on, as a server's own. */
const threads = new InferenceThreads();

const work = tempDir();
const TOKEN = 'test-admin-token-0123456789abcdef';

/** Whether a thread of this process can actually lower its priority and take it back. */
async function canReallyRestore(): Promise<boolean> {
  const worker = new Worker(
    `const os = require('node:os');
     const own = os.getPriority(0);
     os.setPriority(0, own + 1);
     let ok = true;
     try { os.setPriority(0, own); } catch { ok = false; }
     require('node:worker_threads').parentPort.postMessage(ok);`,
    { eval: true },
  );
  const [ok] = (await new Promise((resolve) => worker.once('message', (m) => resolve([m])))) as [boolean];
  await worker.terminate();
  return ok;
}

describe('loading at low priority', () => {
  test('the capability check agrees with what a thread can actually do, as root and as nobody', async () => {
    assert.equal(canRestorePriority(), await canReallyRestore());
    if (process.getuid?.() === 0) {
      // Another user, without CAP_SYS_NICE: a lowered priority could not be taken back. The
      // module (it imports only node:*) is copied where that user can read it.
      const open = await mkdtemp(join(tmpdir(), 'hotocr-priority-'));
      await chmod(open, 0o755);
      const copy = join(open, 'priority.mjs');
      await copyFile(fileURLToPath(new URL('../src/loaders/priority.js', import.meta.url)), copy);
      await chmod(copy, 0o644);
      const script = `import('${pathToFileURL(copy).href}').then((m) => console.log(m.canRestorePriority()))`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: open,
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
      });
      await rm(open, { recursive: true, force: true });
      assert.equal(child.stdout.trim(), 'false', child.stderr);
    }
  });

  test('a pool loads at the nice value asked and takes its priority back when ready', async () => {
    const pkg = await verifiedBundled(join(work, 'pool-home'));
    const before = atNice(17);
    // The runtime's first sessions in a process start a process-wide thread: never lowered.
    const first = await threads.load(pkg, { workers: 1, intraOpThreads: 1, loadNice: 17 });
    assert.equal(atNice(17), before);
    await first.release();
    const pool = await threads.load(pkg, { workers: 2, intraOpThreads: 1, loadNice: 17 });
    try {
      // Exactly its two inference threads were lowered: the runtime started none of its own.
      assert.equal(atNice(17) - before, 2);
      if (canRestorePriority()) {
        await pool.ready();
        assert.equal(atNice(17), before);
        const result = await pool.read(await decodeImage(await renderText(['Priority back 42'])));
        assert.equal(result.lines.map((l) => l.text).join(''), 'Priority back 42');
      } else {
        await assert.rejects(pool.ready(), (e: HotocrError) => e.code === 'LOAD_FAILED');
      }
    } finally {
      await pool.release();
    }
    // Without loadNice, or with threads onnxruntime would start itself, nothing is lowered.
    const plain = await threads.load(pkg, { workers: 1, intraOpThreads: 2, loadNice: 17 });
    try {
      assert.equal(atNice(17), before);
    } finally {
      await plain.release();
    }
  });

  test('a version swapped in while another serves loads at low priority; the first one and the new one serve at normal priority', async () => {
    const home = join(work, 'swap-home');
    await writeFile(join(work, 'token'), `${TOKEN}\n`);
    const base = atNice(19);
    // Sampled every 5 ms from the start: the first version (nothing serving yet) is not lowered.
    let highest = 0;
    const sample = () => {
      highest = Math.max(highest, atNice(19) - base);
    };
    let timer = setInterval(sample, 5);
    const server = await startServer(
      readServeConfig(
        { port: '0', host: '127.0.0.1', data: home, adminTokenFile: join(work, 'token'), loadNice: '19' },
        {},
      ),
      pino({ level: 'silent' }),
    );
    clearInterval(timer);
    try {
      assert.equal(highest, 0, 'the first version loaded at low priority with nothing to protect');
      const src = await writeBundledSource(join(work, 'src-5.0.0'), '5.0.0');
      const out = join(work, 'ppocr-5.0.0.zip');
      await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out });
      timer = setInterval(sample, 5);
      const res = await fetch(`${server.url}/v1/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
        body: await readFile(out),
      });
      clearInterval(timer);
      assert.equal(res.status, 201, await res.text());
      if (canRestorePriority())
        assert.ok(highest >= 1, 'no thread was seen at nice 19 while the new version loaded');
      // Where a priority could not be taken back, nothing is lowered at all.
      else assert.equal(highest, 0);
      // Serving: nothing left at low priority, and the new version answers.
      assert.equal(atNice(19), base);
      const answer = await fetch(`${server.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: await renderText(['Served at normal priority']),
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('x-model-version')?.endsWith('/5.0.0'), true);
    } finally {
      await server.close();
    }
  });
});
