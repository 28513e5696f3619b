import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { bundleFor, FIXTURES, type Material, signFolder, statementFor } from '../../test/helpers/oms.js';
import {
  LEAF_EXT,
  opensslIssue,
  opensslKey,
  opensslRoot,
  type TestKeyType,
} from '../../test/helpers/openssl.js';
import { manifest, sourceDir } from '../../test/helpers/packages.js';
import { makeZip, type RawEntry } from '../../test/helpers/raw-zip.js';
import { isolatedTmp, tempDir } from '../../test/helpers/tmp.js';
import { PackageRejectedError, type RejectionCode } from '../errors.js';
import { TrustStore } from './trust-store.js';
import { type VerifyOptions, verifyPackage } from './verify-package.js';

const work = tempDir();
const tmp = isolatedTmp();
let ec: { key: string; pub: string };
let trust: TrustStore;
let counter = 0;

/** `zip` run in `dir` over `names`, as a producer zips a signed model folder. */
function zip(dir: string, names = '*', flags = '-q -X'): string {
  counter += 1;
  const out = join(work, `oms-${counter}.zip`);
  execFileSync('sh', ['-c', `cd '${dir}' && zip ${flags} '${out}' ${names}`]);
  return out;
}

async function freshSource(): Promise<string> {
  counter += 1;
  return sourceDir(join(work, `src-${counter}`));
}

async function rejects(
  path: string,
  code: RejectionCode,
  options: Partial<VerifyOptions> = {},
): Promise<PackageRejectedError> {
  let caught: unknown;
  try {
    await verifyPackage(path, { trust, ...options });
  } catch (error) {
    caught = error;
  }
  assert.ok(
    caught instanceof PackageRejectedError,
    `expected ${code}, got ${caught instanceof Error ? caught.stack : 'success'}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.details.path, path, 'the error names the package');
  assert.deepEqual(tmp.leftovers(), [], 'no temporary file is left behind');
  return caught;
}

before(async () => {
  ec = await opensslKey(work, 'producer', 'ec-p256');
  trust = await TrustStore.load(ec.pub);
});

describe('OMS-signed model folders with folders in them', () => {
  test('a ZIP of a signed model directory with folders is refused as not flat, naming the folder', async () => {
    const dir = await freshSource();
    await mkdir(join(dir, 'onnx'));
    await writeFile(join(dir, 'onnx', 'extra.onnx'), 'graph');
    await signFolder(dir, ec.key);
    const err = await rejects(zip(dir, '-r .'), 'MODEL_NOT_FLAT');
    assert.match(err.message, /onnx/);
    assert.match(err.message, /flat/);
  });

  test('a ZIP made flat (zip -j) of a model signed with folders is refused as not flat, once its signature verified', async () => {
    const dir = await freshSource();
    await mkdir(join(dir, 'onnx'));
    await writeFile(join(dir, 'onnx', 'extra.onnx'), 'graph');
    await signFolder(dir, ec.key);
    const err = await rejects(zip(dir, '-r .', '-q -X -j'), 'MODEL_NOT_FLAT');
    assert.match(err.message, /onnx\/extra\.onnx/);
  });

  test('a hotocr package (no model.sig) with a folder keeps its PATH_UNSAFE', async () => {
    const dir = await freshSource();
    await mkdir(join(dir, 'onnx'));
    await writeFile(join(dir, 'onnx', 'extra.onnx'), 'graph');
    const err = await rejects(zip(dir, '-r .'), 'PATH_UNSAFE');
    assert.match(err.message, /folder/);
  });
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The files of a model: config.json, graphs of random bytes, a dictionary. */
function modelFiles(config: Record<string, unknown> = manifest()): Map<string, Buffer> {
  return new Map([
    ['config.json', Buffer.from(JSON.stringify(config))],
    ['det.onnx', randomBytes(40_000)],
    ['rec.onnx', randomBytes(80_000)],
    ['cls.onnx', randomBytes(10_000)],
    ['keys.txt', Buffer.from('a\nb\nc\n')],
  ]);
}

interface OmsZipOptions {
  /** Names the statement lists (default: every file), in this order. */
  readonly listed?: readonly string[];
  /** Files in the ZIP besides model.sig (default: every file). */
  readonly zipped?: readonly string[];
  /** Entries deflated (default: none, as graphs are stored). */
  readonly deflated?: readonly string[];
  /** Edits the statement before it is signed. */
  readonly patch?: (statement: Record<string, unknown>) => void;
  readonly material?: Material;
  /** Edits model.sig after signing. */
  readonly editBundle?: (bundle: Record<string, unknown>) => void;
}

/** A ZIP of `files` and a model.sig over them, signed as the reference signs, by hand. */
async function omsZip(files: Map<string, Buffer>, key: string, options: OmsZipOptions = {}): Promise<string> {
  const listed = options.listed ?? [...files.keys()].sort();
  const statement = statementFor(
    'model',
    listed.map((name) => ({ name, digest: sha256(files.get(name) ?? Buffer.alloc(0)) })),
    options.patch,
  );
  const bundle = JSON.parse(await bundleFor(statement, key, options.material));
  options.editBundle?.(bundle);
  const sig = JSON.stringify(bundle);
  const entries: RawEntry[] = (options.zipped ?? [...files.keys()]).map((name) => ({
    name,
    data: files.get(name)!,
    method: options.deflated?.includes(name) ? 8 : 0,
  }));
  entries.push({ name: 'model.sig', data: Buffer.from(sig) });
  counter += 1;
  const out = join(work, `hand-${counter}.zip`);
  await writeFile(out, makeZip(entries));
  return out;
}

/** The ZIP with the deflated entry `name` made unreadable: inflating it fails. */
async function corrupt(path: string, name: string): Promise<string> {
  const bytes = await readFile(path);
  // Its local header: the signature, then 26 bytes, then the name (config.json names it too).
  let at = -1;
  for (let i = bytes.indexOf(Buffer.from(name)); i >= 0; i = bytes.indexOf(Buffer.from(name), i + 1))
    if (i >= 30 && bytes.readUInt32LE(i - 30) === 0x04034b50) {
      at = i + name.length;
      break;
    }
  assert.ok(at > 0, `${name} has a local header`);
  bytes.fill(0xff, at + 10, at + 2000);
  await writeFile(path, bytes);
  return path;
}

describe('OMS-signed ZIPs taken in as packages', () => {
  for (const type of ['ec-p256', 'ec-p384', 'ec-p521'] as TestKeyType[])
    test(`accepts one signed with a ${type} key: its manifest, every entry's hash, the archive's hash, signer oms-key`, async () => {
      const key = await opensslKey(work, `accept-${type}`, type);
      const files = modelFiles();
      const path = await omsZip(files, key.key);
      const pkg = await verifyPackage(path, { trust: await TrustStore.load(key.pub), keepBytes: true });
      assert.equal(pkg.manifest.name, 'ppocr');
      assert.equal(pkg.manifest.version, '2.1.0');
      assert.equal(pkg.sha256, sha256(await readFile(path)));
      assert.equal(pkg.signer.kind, 'oms-key');
      assert.deepEqual(
        pkg.entries.map((e) => [e.name, e.sha256]).sort(),
        [...files].map(([n, b]) => [n, sha256(b)]).sort(),
      );
      for (const [name, bytes] of files) assert.ok(pkg.files.get(name)?.equals(bytes), name);
      assert.ok(!pkg.files.has('model.sig'));
    });

  test('accepts one signed with a certificate that chains to a pinned root: signer oms-certificate', async () => {
    const root = await opensslRoot(work, 'oms-root', { keyType: 'ec-p384' });
    const leaf = await opensslIssue(work, 'oms-leaf', root, { ext: LEAF_EXT, keyType: 'ec-p256' });
    const path = await omsZip(modelFiles(), leaf.key, {
      material: { kind: 'certificate', chain: [leaf.cert] },
    });
    const pkg = await verifyPackage(path, { trust: await TrustStore.load(root.cert) });
    assert.equal(pkg.signer.kind, 'oms-certificate');
    if (pkg.signer.kind === 'oms-certificate') assert.match(pkg.signer.subject, /oms-leaf/);
    await rejects(path, 'KEY_UNTRUSTED');
  });

  test('keeps only the entries a function picks, given their signed SHA-256 and the verified manifest', async () => {
    const files = modelFiles();
    const seen: string[] = [];
    const pkg = await verifyPackage(await omsZip(files, ec.key), {
      trust,
      keepBytes: (entry, m) => {
        assert.equal(m.name, 'ppocr');
        assert.equal(entry.sha256, sha256(files.get(entry.name)!));
        seen.push(entry.name);
        return entry.name === 'rec.onnx';
      },
    });
    assert.deepEqual([...pkg.files.keys()].sort(), ['config.json', 'rec.onnx']);
    assert.ok(seen.includes('det.onnx') && !seen.includes('model.sig'));
  });

  test("checks the signature before any graph byte is read: a stranger's package with an unreadable graph is KEY_UNTRUSTED", async () => {
    const stranger = await opensslKey(work, 'stranger', 'ec-p256');
    const path = await corrupt(
      await omsZip(modelFiles(), stranger.key, { deflated: ['rec.onnx'] }),
      'rec.onnx',
    );
    const err = await rejects(path, 'KEY_UNTRUSTED');
    assert.match(
      err.details.sha256 as string,
      /^[0-9a-f]{64}$/,
      'the report still names the archive by hash',
    );
    // The same package signed by the trusted key reads the graph, and refuses what it reads.
    const read = await rejects(
      await corrupt(await omsZip(modelFiles(), ec.key, { deflated: ['rec.onnx'] }), 'rec.onnx'),
      'CHECKSUM_MISMATCH',
    );
    assert.equal(read.details.entry, 'rec.onnx');
  });

  test('checks coverage before any graph byte is read: an entry the statement lacks is refused first', async () => {
    const files = modelFiles();
    files.set('extra.onnx', randomBytes(30_000));
    const path = await omsZip(files, ec.key, {
      listed: ['cls.onnx', 'config.json', 'det.onnx', 'keys.txt', 'rec.onnx'],
      deflated: ['rec.onnx'],
    });
    const err = await rejects(await corrupt(path, 'rec.onnx'), 'CHECKSUM_UNLISTED_ENTRY');
    assert.match(err.message, /extra\.onnx/);
  });

  test("covers every entry whatever the statement's ignore_paths say", async () => {
    const files = modelFiles();
    files.set('notes.txt', Buffer.from('unsigned'));
    const path = await omsZip(files, ec.key, {
      listed: ['cls.onnx', 'config.json', 'det.onnx', 'keys.txt', 'rec.onnx'],
      patch: (st) => {
        (st.predicate as { serialization: Record<string, unknown> }).serialization.ignore_paths = [
          'notes.txt',
        ];
      },
    });
    const err = await rejects(path, 'CHECKSUM_UNLISTED_ENTRY');
    assert.match(err.message, /notes\.txt/);
  });

  test('refuses a listed entry missing from the ZIP, and a model.sig listing itself', async () => {
    const files = modelFiles();
    await rejects(
      await omsZip(files, ec.key, { zipped: ['config.json', 'det.onnx', 'rec.onnx', 'keys.txt'] }),
      'CHECKSUM_MISSING_ENTRY',
    );
    files.set('model.sig', Buffer.from('{}'));
    await rejects(
      await omsZip(files, ec.key, {
        zipped: ['config.json', 'det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt'],
      }),
      'CHECKSUM_MISSING_ENTRY',
    );
  });

  test('refuses a graph changed after signing, and config.json changed after signing before reading the graphs', async () => {
    const files = modelFiles();
    const good = await omsZip(files, ec.key);
    const bytes = await readFile(good);
    const at = bytes.indexOf(files.get('det.onnx')!.subarray(0, 64)) + 1000;
    bytes[at] = bytes[at]! ^ 1;
    await writeFile(good, bytes);
    assert.match((await rejects(good, 'CHECKSUM_MISMATCH')).message, /det\.onnx/);
    // config.json edited (the version raised) and the graph unreadable: the config is what is refused.
    const edited = await omsZip(files, ec.key, { deflated: ['rec.onnx'] });
    const raw = await readFile(edited);
    const config = raw.indexOf(Buffer.from('"2.1.0"'));
    raw.write('"2.9.0"', config);
    await writeFile(edited, raw);
    const err = await rejects(await corrupt(edited, 'rec.onnx'), 'CHECKSUM_MISMATCH');
    assert.match(err.message, /config\.json/);
  });

  test('refuses a statement edited after signing, its signature kept', async () => {
    const path = await omsZip(modelFiles(), ec.key, {
      editBundle: (bundle) => {
        const envelope = bundle.dsseEnvelope as { payload: string };
        const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString());
        statement.predicate.resources[0].digest = 'ab'.repeat(32);
        envelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
      },
    });
    const err = await rejects(path, 'SIGNATURE_INVALID');
    assert.match(err.message, /changed after signing/);
  });

  test('applies expiry and the version policy, before reading the graphs', async () => {
    const expired = await corrupt(
      await omsZip(modelFiles(manifest({ expires: '2020-01-01T00:00:00Z' })), ec.key, {
        deflated: ['rec.onnx'],
      }),
      'rec.onnx',
    );
    await rejects(expired, 'PACKAGE_EXPIRED');
    const old = await corrupt(await omsZip(modelFiles(), ec.key, { deflated: ['rec.onnx'] }), 'rec.onnx');
    await rejects(old, 'VERSION_DOWNGRADE', { highestActivated: '3.0.0' });
    const allowed = await omsZip(modelFiles(), ec.key);
    const pkg = await verifyPackage(allowed, {
      trust,
      highestActivated: (name) => (name === 'ppocr' ? '3.0.0' : undefined),
      allowDowngrade: true,
    });
    assert.equal(pkg.manifest.version, '2.1.0');
  });

  test('refuses one whose signature does not cover a config.json', async () => {
    const files = modelFiles();
    files.delete('config.json');
    const err = await rejects(await omsZip(files, ec.key), 'CONFIG_INVALID');
    assert.match(err.message, /config\.json/);
  });
});

describe('keyless OMS ZIPs taken in as packages', () => {
  const IDENTITY = 'stefanb@us.ibm.com';
  const ISSUER = 'https://sigstore.verify.ibm.com/oauth2';

  async function keylessZip(): Promise<string> {
    counter += 1;
    const dir = join(work, `keyless-${counter}`);
    await cp(join(FIXTURES, 'v1.0.0-sigstore'), dir, { recursive: true });
    return zip(dir);
  }
  async function identities(text: string): Promise<TrustStore> {
    counter += 1;
    const dir = join(work, `identities-${counter}`);
    await mkdir(dir);
    await writeFile(join(dir, 'release.identities'), text);
    return TrustStore.load(dir);
  }

  test('pass the signature and coverage for an identity the trust folder names (the fixture has no config.json)', async () => {
    const err = await rejects(await keylessZip(), 'CONFIG_INVALID', {
      trust: await identities(`${IDENTITY} ${ISSUER}\n`),
    });
    assert.match(err.message, /config\.json/);
  });

  test('are refused for an identity the trust folder does not name, or when it names none', async () => {
    await rejects(await keylessZip(), 'IDENTITY_MISMATCH', {
      trust: await identities(`someone@example.com ${ISSUER}\n`),
    });
    await rejects(await keylessZip(), 'KEY_UNTRUSTED');
  });
});
