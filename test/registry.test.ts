// test-needs: model
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HotocrError, PackageRejectedError } from '../src/errors.js';
import { loadOcrModel, type ServedModel } from '../src/loaders/index.js';
import { decodeImage, type RgbImage } from '../src/ocr/index.js';
import { ensureBundledPackage, keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { Registry, type RegistryEvent, StateStore, warmUp } from '../src/registry/index.js';
import { FolderSource } from '../src/sources/index.js';
import { hashFile, TrustStore, verifyPackage } from '../src/verify/index.js';
import { renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
let trust: TrustStore;
let signingKey: string;
let image: RgbImage;
const packages = new Map<string, string>();
/** Sessions released, per version: must end at exactly one per released version. */
const releases = new Map<string, number>();

async function packageOf(version: string, change?: (dir: string) => Promise<void>): Promise<string> {
  const key = `${version}${change ? '-changed' : ''}`;
  const known = packages.get(key);
  if (known) return known;
  const dir = await writeBundledSource(join(work, `src-${key}`), version);
  await change?.(dir);
  const out = join(work, `ppocr-${key}.zip`);
  await pack(dir, { signer: await keyFileSigner(signingKey), out });
  packages.set(key, out);
  return out;
}

/** Loads running at once, and the most ever seen. */
const concurrency = { now: 0, max: 0 };

async function makeRegistry(
  data: string,
  keepWarm = 0,
  /** Every file the registry hashes again (the copies it keeps), in order. */
  hashed: string[] = [],
): Promise<{ registry: Registry; events: RegistryEvent[] }> {
  const registry = await Registry.create({
    verify: (path, policy) => verifyPackage(path, { trust, keepBytes: true, ...policy }),
    hashFile: (path) => {
      hashed.push(path);
      return hashFile(path);
    },
    load: async (pkg) => {
      concurrency.now++;
      concurrency.max = Math.max(concurrency.max, concurrency.now);
      const model = await loadOcrModel(pkg, { workers: 1, intraOpThreads: 1 }).finally(() => {
        concurrency.now--;
      });
      const label = `${data}:${pkg.manifest.version}`;
      return {
        ...model,
        read: (img) => model.read(img),
        release: async () => {
          releases.set(label, (releases.get(label) ?? 0) + 1);
          await model.release();
        },
      } satisfies ServedModel;
    },
    warmUp: (model, pkg) => warmUp(model, pkg.manifest),
    store: new StateStore(join(data, 'state.json')),
    packagesDir: join(data, 'packages'),
    keepWarm,
  });
  const events: RegistryEvent[] = [];
  registry.on((e) => events.push(e));
  return { registry, events };
}

before(async () => {
  const bundled = await ensureBundledPackage(join(work, 'home'));
  trust = await TrustStore.load(bundled.trustPath);
  signingKey = join(work, 'home', 'dev-key', 'signing.key');
  image = await decodeImage(await renderText(['Hot swap 2026']));
});

describe('the switch', () => {
  let registry: Registry;
  let events: RegistryEvent[];
  const data = join(work, 'switch');

  before(async () => {
    ({ registry, events } = await makeRegistry(data));
  });
  after(async () => {
    await registry.close();
  });

  test('loads, warms up and activates a package, reporting each step', async () => {
    const v = await registry.submit(await packageOf('4.0.1'), { source: 'folder' });
    assert.equal(v.state, 'active');
    assert.equal(registry.active('ppocr')?.version, '4.0.1');
    assert.deepEqual(
      events.map((e) => e.type),
      ['package-seen', 'verifying', 'verified', 'loading', 'ready', 'activated'],
    );
  });

  test('finishes in-flight requests on the old version across a swap; new requests see the new one', async () => {
    const before = registry.active('ppocr')!;
    const leases = Array.from({ length: 4 }, () => registry.lease('ppocr')!);
    assert.ok(leases.every((l) => l.version === before));
    const reads = leases.map(async (lease) => {
      try {
        return { version: lease.version.version, result: await lease.model.read(image) };
      } finally {
        lease.release();
      }
    });
    const swapped = registry.submit(await packageOf('4.0.2'), { source: 'folder' });
    // Requests keep arriving during the swap: every one gets a version.
    const during: string[] = [];
    const ticker = setInterval(() => {
      const l = registry.lease('ppocr');
      assert.ok(l, 'a request found no version to run on');
      during.push(l.version.version);
      l.release();
    }, 1);
    await swapped;
    clearInterval(ticker);
    const done = await Promise.all(reads);
    assert.ok(done.every((d) => d.version === '4.0.1' && d.result.lines.length === 1));
    assert.ok(during.length > 0);
    const after = registry.lease('ppocr')!;
    assert.equal(after.version.version, '4.0.2');
    after.release();
  });

  test('releases the old version exactly once, after its last lease, including a lease whose request failed', async () => {
    const old = registry.active('ppocr')!;
    const held = registry.lease('ppocr')!;
    const failing = registry.lease('ppocr')!;
    await registry.submit(await packageOf('4.0.3'), { source: 'folder' });
    assert.equal(old.state, 'draining');
    assert.equal(registry.lease('ppocr', '4.0.2'), undefined, 'no lease on a draining version');
    // A request whose inference fails returns its lease like any other.
    await assert.rejects(async () => {
      try {
        await failing.model.read(undefined as unknown as RgbImage);
      } finally {
        failing.release();
      }
    });
    assert.equal(releases.get(`${data}:4.0.2`), undefined, 'released while a lease was held');
    held.release();
    held.release();
    await old.drain();
    assert.equal(old.state, 'released');
    assert.equal(releases.get(`${data}:4.0.2`), 1);
    assert.ok(events.some((e) => e.type === 'released' && e.version === '4.0.2'));
  });

  test('a bad package leaves the active version serving, and is reported with its code', async () => {
    const bad = join(work, 'tampered.zip');
    const bytes = Buffer.from(await readFile(await packageOf('4.0.4')));
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await writeFile(bad, bytes);
    await assert.rejects(registry.submit(bad, { source: 'folder' }), PackageRejectedError);
    assert.equal(registry.active('ppocr')?.version, '4.0.3');
    const rejected = events.filter((e) => e.type === 'rejected').at(-1);
    assert.ok(
      rejected && rejected.type === 'rejected' && /^(CHECKSUM_MISMATCH|ARCHIVE_INVALID)$/.test(rejected.code),
    );
    const lease = registry.lease('ppocr')!;
    assert.equal((await lease.model.read(image)).lines.length, 1);
    lease.release();
  });

  test('a version whose warm-up does not read what its manifest expects fails without touching the active one', async () => {
    const path = await packageOf('4.0.5', async (dir) => {
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      config.warmup = { expect: 'something else entirely' };
      await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    });
    await assert.rejects(
      registry.submit(path, { source: 'folder' }),
      (e: unknown) => e instanceof HotocrError && e.code === 'WARMUP_FAILED',
    );
    assert.equal(registry.active('ppocr')?.version, '4.0.3');
    assert.equal(registry.versions().find((v) => v.version === '4.0.5')?.state, 'failed');
    assert.equal(releases.get(`${data}:4.0.5`), 1, 'the failed version released its sessions');
  });

  test('does not load the same bytes twice, under whatever file name they arrive', async () => {
    const copy = join(work, 'same-bytes-other-name.zip');
    await copyFile(await packageOf('4.0.3'), copy);
    const before = events.length;
    const v = await registry.submit(copy, { source: 'folder' });
    assert.equal(v, registry.active('ppocr'));
    assert.ok(!events.slice(before).some((e) => e.type === 'loading'), 'no second load');
  });

  test('refuses a downgrade from the same source unless asked for explicitly', async () => {
    await assert.rejects(
      registry.submit(await packageOf('4.0.1'), { source: 'folder' }),
      (e: unknown) => e instanceof PackageRejectedError && e.code === 'VERSION_DOWNGRADE',
    );
    assert.equal(registry.active('ppocr')?.version, '4.0.3');
  });
});

describe('rollback, staging, unload and restart', () => {
  const data = join(work, 'restart');

  test('stages without activating, activates on request, rolls back to a warm version instantly', async () => {
    const { registry } = await makeRegistry(data, 1);
    try {
      await registry.submit(await packageOf('4.0.1'), { source: 'upload' });
      await registry.submit(await packageOf('4.0.2'), { source: 'upload' });
      const warm = registry.versions().find((v) => v.version === '4.0.1')!;
      assert.equal(warm.state, 'ready', 'kept warm (--keep-warm 1)');
      const staged = await registry.submit(await packageOf('4.0.3'), { source: 'upload', activate: false });
      assert.equal(staged.state, 'ready');
      assert.equal(registry.active('ppocr')?.version, '4.0.2');
      await registry.activate('ppocr', '4.0.3');
      assert.equal(registry.active('ppocr')?.version, '4.0.3');
      await registry.rollback('ppocr');
      assert.equal(registry.active('ppocr')?.version, '4.0.2');
      await assert.rejects(
        registry.unload('ppocr', '4.0.2'),
        (e: unknown) => e instanceof HotocrError && e.code === 'VERSION_ACTIVE',
      );
      await registry.activate('ppocr', '4.0.3');
    } finally {
      await registry.close();
    }
  });

  test('resumes the last active version after a restart, verifying it again', async () => {
    const state = JSON.parse(await readFile(join(data, 'state.json'), 'utf8'));
    assert.equal(state.active.ppocr.version, '4.0.3');
    const { registry, events } = await makeRegistry(data);
    try {
      const report = await registry.restore();
      assert.deepEqual(report, [{ name: 'ppocr', version: '4.0.3' }]);
      assert.ok(events.some((e) => e.type === 'verifying'));
      assert.equal(registry.active('ppocr')?.version, '4.0.3');
    } finally {
      await registry.close();
    }
  });

  test('falls back to the best other verified version when the last active one no longer verifies', async () => {
    const state = JSON.parse(await readFile(join(data, 'state.json'), 'utf8'));
    const kept = state.active.ppocr.package as string;
    const bytes = Buffer.from(await readFile(kept));
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await writeFile(kept, bytes);
    const { registry } = await makeRegistry(data);
    try {
      const [report] = await registry.restore();
      assert.equal(report?.fellBackFrom, '4.0.3');
      assert.equal(report?.version, '4.0.2');
      assert.match(report?.error ?? '', /CHECKSUM_MISMATCH|ARCHIVE_INVALID/);
    } finally {
      await registry.close();
    }
  });
});

describe('the package kept for restarts', () => {
  test('a file the caller owns is moved into the packages folder; any other is copied and hashed again', async () => {
    const data = join(work, 'kept');
    const hashed: string[] = [];
    const { registry } = await makeRegistry(data, 0, hashed);
    try {
      const watched = await packageOf('4.1.0');
      const first = await registry.submit(watched, { source: 'folder' });
      assert.ok(existsSync(watched), 'a watched file stays where it is');
      assert.deepEqual(await readFile(first.packagePath), await readFile(watched));
      assert.equal(hashed.length, 1, 'the copy was hashed again');

      const upload = join(work, 'upload-owned.zip');
      await copyFile(await packageOf('4.1.1'), upload);
      const second = await registry.submit(upload, { source: 'upload', owned: true });
      assert.equal(existsSync(upload), false, 'the owned file was moved');
      assert.deepEqual(await readFile(second.packagePath), await readFile(await packageOf('4.1.1')));
      assert.equal(hashed.length, 1, 'a moved file is not hashed again');
      assert.equal((await verifyPackage(second.packagePath, { trust })).sha256, second.sha256);

      // Refused: the file stays, for its owner to remove.
      const refused = join(work, 'upload-refused.zip');
      await copyFile(await packageOf('4.1.0'), refused);
      await assert.rejects(
        registry.submit(refused, { source: 'upload', owned: true }),
        (e: unknown) => e instanceof PackageRejectedError && e.code === 'VERSION_DOWNGRADE',
      );
      assert.ok(existsSync(refused));
    } finally {
      await registry.close();
    }
    // A restart resumes from the moved file.
    const { registry: again } = await makeRegistry(data);
    try {
      assert.deepEqual(await again.restore(), [{ name: 'ppocr', version: '4.1.1' }]);
    } finally {
      await again.close();
    }
  });
});

describe('many packages at once', () => {
  test('twenty packages dropped together are each processed, one load at a time, and the highest ends active', async () => {
    const data = join(work, 'twenty');
    const dir = join(work, 'twenty-drop');
    const { registry, events } = await makeRegistry(data);
    const source = await FolderSource.create({
      dir,
      settleMs: 200,
      submit: (path) => registry.submit(path, { source: 'folder' }),
    });
    try {
      const versions = Array.from({ length: 20 }, (_, i) => `5.0.${i}`);
      const paths = await Promise.all(versions.map((v) => packageOf(v)));
      concurrency.max = 0;
      // Dropped in shuffled order, all at once.
      const order = [...paths.keys()].sort((a, b) => ((a * 7) % 20) - ((b * 7) % 20));
      await Promise.all(order.map((i) => copyFile(paths[i]!, join(dir, `pkg-${i}.zip`))));
      const deadline = Date.now() + 120_000;
      const settled = () =>
        versions.every((v) =>
          events.some(
            (e) =>
              ('version' in e && e.version === v && (e.type === 'activated' || e.type === 'ready')) ||
              (e.type === 'rejected' && e.message.includes(v)),
          ),
        );
      while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(settled(), 'every package was processed');
      assert.equal(concurrency.max, 1, 'one load at a time');
      assert.equal(registry.active('ppocr')?.version, '5.0.19');
      const refused = events.filter((e) => e.type === 'rejected');
      assert.ok(refused.every((e) => e.type === 'rejected' && e.code === 'VERSION_DOWNGRADE'));
    } finally {
      source.close();
      await registry.close();
    }
  });
});
