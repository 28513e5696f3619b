import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { PackageRejectedError } from '../src/errors.js';
import { canRestorePriority } from '../src/loaders/index.js';
import { keygen } from '../src/pack/index.js';
import { hashDescriptor } from '../src/verify/hash-thread.js';
import { hashFile, TrustStore, verifyPackage } from '../src/verify/index.js';
import { packWith, sourceDir } from './helpers/packages.js';
import { atNice, crashOnNextMessage } from './helpers/threads.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
const GRAPH_MIB = 96;
let trust: TrustStore;
let pkg: string;
let graph: Buffer;

before(async () => {
  const keys = await keygen({ type: 'ed25519', out: join(work, 'keys') });
  trust = await TrustStore.load(keys.publicKeyPath);
  const dir = await sourceDir(join(work, 'src'));
  graph = randomBytes(GRAPH_MIB * 1024 * 1024);
  await writeFile(join(dir, 'rec.onnx'), graph);
  pkg = await packWith(dir, keys.privateKeyPath, join(work, 'big.zip'));
});

describe('the hashing thread', () => {
  test('hands over the exact bytes it hashed', async () => {
    // That the reading and hashing run on the hashing thread, not here, is shown below (a job
    // the thread died under); what it spares the main thread is bench/verify's figure.
    const verified = await verifyPackage(pkg, { trust, keepBytes: true });
    const kept = verified.files.get('rec.onnx')!;
    assert.ok(kept.equals(graph), 'the kept bytes differ from the graph packed');
    assert.equal(
      createHash('sha256').update(kept).digest('hex'),
      verified.entries.find((e) => e.name === 'rec.onnx')!.sha256,
    );
  });

  test('runs at the nice value asked, then takes its priority back', async () => {
    const base = atNice(13);
    let highest = 0;
    const timer = setInterval(() => {
      highest = Math.max(highest, atNice(13) - base);
    }, 2);
    try {
      await verifyPackage(pkg, { trust, keepBytes: false, nice: 13 });
    } finally {
      clearInterval(timer);
    }
    // Lowering needs no privilege: one thread was seen at nice 13 while the package was read.
    assert.equal(highest, 1);
    // Taking the priority back does; a thread that cannot stops, so none stays lowered either way.
    if (canRestorePriority()) assert.equal(atNice(13), base);
    const again = await verifyPackage(pkg, { trust, keepBytes: false });
    assert.equal(again.manifest.name, 'ppocr');
  });

  test('a package no trusted key signed is refused before its graphs are read, with the archive hash in the report', async () => {
    const stranger = await keygen({ type: 'ed25519', out: join(work, 'stranger') });
    const dir = await sourceDir(join(work, 'src-stranger'));
    const refused = await packWith(dir, stranger.privateKeyPath, join(work, 'stranger.zip'));
    await assert.rejects(verifyPackage(refused, { trust, keepBytes: true }), (e: PackageRejectedError) => {
      assert.equal(e.code, 'SIGNATURE_INVALID');
      assert.equal(e.details.path, refused);
      assert.equal(e.details.sha256, createHash('sha256').update(readFileSync(refused)).digest('hex'));
      return true;
    });
    // The big package, under a trust store without its key: no entry is even considered for
    // keeping (which happens as the graphs are read, after the signature); accepted, each is.
    const strangers = await TrustStore.load(stranger.publicKeyPath);
    const considered: string[] = [];
    const keepBytes = (entry: { name: string }) => {
      considered.push(entry.name);
      return true;
    };
    await assert.rejects(
      verifyPackage(pkg, { trust: strangers, keepBytes }),
      (e: PackageRejectedError) => e.code === 'SIGNATURE_INVALID' || e.code === 'KEY_UNTRUSTED',
    );
    assert.equal(considered.length, 0, `considered ${considered.join(', ')}`);
    await verifyPackage(pkg, { trust, keepBytes });
    assert.ok(considered.includes('rec.onnx'));
  });

  test('a file that cannot be read is reported with its errno code', async () => {
    await assert.rejects(hashFile(join(work, 'missing.zip')), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, 'ENOENT');
      return true;
    });
    assert.equal(await hashFile(pkg), createHash('sha256').update(readFileSync(pkg)).digest('hex'));
  });

  test('a read whose signal fires stops with its reason, and the thread takes the next job', async () => {
    const fd = openSync(pkg, 'r');
    try {
      const controller = new AbortController();
      const reason = new Error('the server is stopping');
      const reading = hashDescriptor(fd, fstatSync(fd).size, [], undefined, controller.signal);
      // Once the job is on the thread: the cancel must reach a job that is reading.
      setImmediate(() => controller.abort(reason));
      await assert.rejects(reading, (e) => e === reason);
      // Settled means the thread let go of the descriptor: closing it now is safe.
    } finally {
      closeSync(fd);
    }
    assert.equal(await hashFile(pkg), createHash('sha256').update(readFileSync(pkg)).digest('hex'));
    const aborted = new AbortController();
    aborted.abort(new Error('before it starts'));
    await assert.rejects(verifyPackage(pkg, { trust, signal: aborted.signal }), /before it starts/);
  });

  test('a job the thread died under is done again on a new thread', async () => {
    const sha256 = createHash('sha256').update(readFileSync(pkg)).digest('hex');
    assert.equal(await hashFile(pkg), sha256); // the thread is running
    await crashOnNextMessage('hash-worker', 1);
    assert.equal(await hashFile(pkg), sha256);
    await crashOnNextMessage('hash-worker', 1);
    const verified = await verifyPackage(pkg, { trust, keepBytes: true });
    assert.equal(verified.sha256, sha256);
    assert.ok(verified.files.get('rec.onnx')!.equals(graph), 'the kept bytes differ from the graph packed');
  });
});
