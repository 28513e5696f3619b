import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { before, describe, test } from 'node:test';
import { bundleFor, FIXTURES, signFolder, statementFor } from '../../test/helpers/oms.js';
import { opensslKey, opensslRoot } from '../../test/helpers/openssl.js';
import { manifest, packWith, sourceDir } from '../../test/helpers/packages.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { HotocrError, PackageRejectedError, type RejectionCode } from '../errors.js';
import { type OmsVerifyOptions, omsFormOf, type VerifiedOmsModel, verifyOmsModel } from './oms-verify.js';
import { TrustStore } from './trust-store.js';

const work = tempDir();
const KEYS = join(FIXTURES, 'keys');
const KEYLESS = { identity: 'stefanb@us.ibm.com', issuer: 'https://sigstore.verify.ibm.com/oauth2' };
let keyTrust: TrustStore;
let caTrust: TrustStore;

/** How the fixture README says the reference verifies each folder, as options. */
function referenceOptions(folder: string, dir = join(FIXTURES, folder)): OmsVerifyOptions {
  const ignorePaths = folder.startsWith('v1.0.1') ? [join(dir, 'ignore-me')] : [];
  if (folder.endsWith('elliptic-key')) return { trust: keyTrust, ignorePaths };
  if (folder.endsWith('certificate')) return { trust: caTrust, ignorePaths };
  return { keyless: KEYLESS, ignorePaths };
}

const FOLDERS = [
  'v1.0.1-elliptic-key',
  'v1.0.0-certificate',
  'v1.0.1-certificate',
  'v1.0.0-sigstore',
  'v1.0.1-sigstore',
];

let copies = 0;
/** A copy of a fixture folder to tamper with. */
async function copy(folder: string): Promise<string> {
  copies += 1;
  const dir = join(work, `${copies}-${folder}`);
  await cp(join(FIXTURES, folder), dir, { recursive: true });
  return dir;
}

async function verifies(path: string, options: OmsVerifyOptions): Promise<VerifiedOmsModel> {
  const form = await omsFormOf(path, options.signature);
  assert.ok(form, `${path} is an OMS model`);
  return verifyOmsModel(path, form, options);
}

async function rejects(
  path: string,
  options: OmsVerifyOptions,
  code: RejectionCode,
  pattern?: RegExp,
): Promise<PackageRejectedError> {
  let caught: unknown;
  try {
    await verifies(path, options);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PackageRejectedError, `expected ${code}, got ${caught ?? 'success'}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  assert.equal(caught.details.path, path, 'the error names the model');
  return caught;
}

before(async () => {
  keyTrust = await TrustStore.load(join(KEYS, 'signing-key-pub.pem'));
  caTrust = await TrustStore.load(join(KEYS, 'ca-cert.pem'));
});

describe('the reference fixtures verify as its README says', () => {
  test('v1.0.0-elliptic-key: a single file, its signature named', async () => {
    const model = await verifies(join(FIXTURES, 'v1.0.0-elliptic-key', 'signme-1'), {
      trust: keyTrust,
      signature: join(FIXTURES, 'v1.0.0-elliptic-key', 'model.sig'),
    });
    assert.equal(model.form, 'file');
    assert.equal(model.flavour, 'key');
    assert.deepEqual(
      model.files.map((f) => f.name),
      ['.'],
    );
    assert.equal(model.sha256, model.files[0]!.sha256);
  });

  for (const folder of FOLDERS) {
    test(`${folder}: a folder, with model.sig${folder.startsWith('v1.0.1') ? ' and ignore-me ignored' : ''}`, async () => {
      const model = await verifies(join(FIXTURES, folder), referenceOptions(folder));
      assert.equal(model.form, 'directory');
      assert.equal(model.name, folder);
      assert.deepEqual(
        model.files.map((f) => f.name),
        ['signme-1', 'signme-2'],
      );
      assert.deepEqual(
        model.ignored,
        folder.startsWith('v1.0.1') ? ['ignore-me', 'model.sig'] : ['model.sig'],
      );
      assert.equal(model.sha256, null);
    });
  }

  test('an ignore path may also be given relative to the model folder', async () => {
    const model = await verifies(join(FIXTURES, 'v1.0.1-certificate'), {
      trust: caTrust,
      ignorePaths: ['ignore-me'],
    });
    assert.ok(model.ignored.includes('ignore-me'));
  });
});

describe('the fixtures refused once changed', () => {
  for (const folder of FOLDERS) {
    test(`${folder}: a file changed after signing`, async () => {
      const dir = await copy(folder);
      await appendFile(join(dir, 'signme-2'), 'x');
      await rejects(dir, referenceOptions(folder, dir), 'CHECKSUM_MISMATCH', /signme-2/);
    });

    test(`${folder}: a file added`, async () => {
      const dir = await copy(folder);
      await writeFile(join(dir, 'extra.bin'), 'not signed');
      await rejects(dir, referenceOptions(folder, dir), 'CHECKSUM_UNLISTED_ENTRY', /extra\.bin/);
    });

    test(`${folder}: a file removed`, async () => {
      const dir = await copy(folder);
      await rm(join(dir, 'signme-1'));
      await rejects(dir, referenceOptions(folder, dir), 'CHECKSUM_MISSING_ENTRY', /signme-1/);
    });

    test(`${folder}: model.sig truncated`, async () => {
      const dir = await copy(folder);
      const sig = await readFile(join(dir, 'model.sig'));
      await writeFile(join(dir, 'model.sig'), sig.subarray(0, sig.length - 40));
      await rejects(dir, referenceOptions(folder, dir), 'OMS_BUNDLE_INVALID', /truncated/);
    });
  }

  /** Every fixture, the single file included, as the path and options the README gives. */
  const ALL: [string, (dir: string) => [string, OmsVerifyOptions]][] = [
    [
      'v1.0.0-elliptic-key',
      (dir) => [join(dir, 'signme-1'), { trust: keyTrust, signature: join(dir, 'model.sig') }],
    ],
    ...FOLDERS.map((folder): [string, (dir: string) => [string, OmsVerifyOptions]] => [
      folder,
      (dir) => [dir, referenceOptions(folder, dir)],
    ]),
  ];

  for (const [folder, as] of ALL) {
    test(`${folder}: re-signed with another key over an edited statement, its verification material kept`, async () => {
      const dir = await copy(folder);
      const sig = JSON.parse(await readFile(join(dir, 'model.sig'), 'utf8'));
      const statement = JSON.parse(Buffer.from(sig.dsseEnvelope.payload, 'base64').toString());
      statement.subject[0].name = 'forged';
      const forger = await opensslKey(work, `forger-${folder}`, 'ec-p384');
      sig.dsseEnvelope = JSON.parse(await bundleFor(statement, forger.key)).dsseEnvelope;
      await writeFile(join(dir, 'model.sig'), JSON.stringify(sig));
      const [path, options] = as(dir);
      // A key or certificate bundle names the trusted signer, whose signature no longer
      // verifies; a keyless one's log entry records the original envelope.
      await rejects(path, options, folder.endsWith('sigstore') ? 'TLOG_INVALID' : 'SIGNATURE_INVALID');
    });

    test(`${folder}: someone else trusted instead`, async () => {
      const [path, options] = as(join(FIXTURES, folder));
      if (folder.endsWith('sigstore')) {
        await rejects(
          path,
          { ...options, keyless: { ...KEYLESS, identity: 'other@example.com' } },
          'IDENTITY_MISMATCH',
        );
        await rejects(
          path,
          { ...options, keyless: { ...KEYLESS, issuer: 'https://oauth2.sigstore.dev/auth' } },
          'IDENTITY_MISMATCH',
        );
      } else if (folder.endsWith('certificate')) {
        const foreign = await opensslRoot(work, `foreign-${folder}`);
        await rejects(
          path,
          { ...options, trust: await TrustStore.load(foreign.cert) },
          'CERT_CHAIN_INVALID',
          /not pinned/,
        );
      } else {
        const stranger = await opensslKey(work, `stranger-${folder}`, 'ec-p384');
        await rejects(path, { ...options, trust: await TrustStore.load(stranger.pub) }, 'KEY_UNTRUSTED');
      }
    });

    test(`${folder}: model.sig cut short`, async () => {
      const dir = await copy(folder);
      const sig = await readFile(join(dir, 'model.sig'));
      await writeFile(join(dir, 'model.sig'), sig.subarray(0, Math.floor(sig.length / 3)));
      const [path, options] = as(dir);
      await rejects(path, options, 'OMS_BUNDLE_INVALID', /truncated/);
    });
  }

  test('v1.0.1 folders without ignore-me ignored: it is not covered', async () => {
    for (const folder of ['v1.0.1-elliptic-key', 'v1.0.1-certificate', 'v1.0.1-sigstore'])
      await rejects(
        join(FIXTURES, folder),
        { ...referenceOptions(folder), ignorePaths: [] },
        'CHECKSUM_UNLISTED_ENTRY',
        /ignore-me/,
      );
  });

  test('a signed file cannot be ignored', async () => {
    await rejects(
      join(FIXTURES, 'v1.0.0-certificate'),
      { trust: caTrust, ignorePaths: ['signme-1'] },
      'CHECKSUM_MISSING_ENTRY',
      /ignored \(--ignore-paths\)/,
    );
  });

  test('the single file changed, or given with a folder signature', async () => {
    const dir = await copy('v1.0.0-elliptic-key');
    await appendFile(join(dir, 'signme-1'), 'x');
    await rejects(
      join(dir, 'signme-1'),
      { trust: keyTrust, signature: join(dir, 'model.sig') },
      'CHECKSUM_MISMATCH',
    );
    await rejects(
      join(FIXTURES, 'v1.0.1-elliptic-key', 'signme-1'),
      { trust: keyTrust, signature: join(FIXTURES, 'v1.0.1-elliptic-key', 'model.sig') },
      'CHECKSUM_UNLISTED_ENTRY',
      /single file/,
    );
    await rejects(
      await copy('v1.0.0-elliptic-key'),
      { trust: keyTrust },
      'CHECKSUM_MISSING_ENTRY',
      /single-file/,
    );
  });

  test('the wrong key, another root, or keyless options for a key signature', async () => {
    const stranger = await opensslKey(work, 'stranger', 'ec-p384');
    await rejects(
      join(FIXTURES, 'v1.0.0-certificate'),
      { trust: await TrustStore.load(stranger.pub) },
      'KEY_UNTRUSTED',
    );
    await rejects(
      join(FIXTURES, 'v1.0.1-elliptic-key'),
      { trust: await TrustStore.load(stranger.pub), ignorePaths: ['ignore-me'] },
      'KEY_UNTRUSTED',
    );
    await rejects(join(FIXTURES, 'v1.0.0-certificate'), { keyless: KEYLESS }, 'KEY_UNTRUSTED', /--trust/);
    await rejects(join(FIXTURES, 'v1.0.0-sigstore'), { trust: keyTrust }, 'KEY_UNTRUSTED', /--identity/);
  });

  test('another identity or issuer for the keyless fixtures', async () => {
    await rejects(
      join(FIXTURES, 'v1.0.0-sigstore'),
      { keyless: { ...KEYLESS, identity: 'someone@example.com' } },
      'IDENTITY_MISMATCH',
    );
    await rejects(
      join(FIXTURES, 'v1.0.0-sigstore'),
      { keyless: { ...KEYLESS, issuer: 'https://accounts.google.com' } },
      'IDENTITY_MISMATCH',
    );
  });

  test('a bundle re-signed by another key over an edited statement', async () => {
    const dir = await copy('v1.0.1-elliptic-key');
    await writeFile(join(dir, 'signme-2'), 'replaced');
    const stranger = await opensslKey(work, 'forger', 'ec-p384');
    await signFolder(dir, stranger.key, { kind: 'key', style: 'rawBytes' }, (n) => n === 'ignore-me');
    await rejects(dir, { trust: keyTrust, ignorePaths: ['ignore-me'] }, 'KEY_UNTRUSTED');
  });

  test('no model.sig, or a signature file that is not there', async () => {
    const dir = await copy('v1.0.0-certificate');
    await rm(join(dir, 'model.sig'));
    await rejects(dir, { trust: caTrust }, 'SIGNATURE_MISSING', /--signature/);
    await rejects(dir, { trust: caTrust, signature: join(dir, 'nope.sig') }, 'SIGNATURE_MISSING');
  });
});

describe('folders as the reference walks them', () => {
  let key: { key: string; pub: string };
  let trust: TrustStore;
  before(async () => {
    key = await opensslKey(work, 'walker', 'ec-p256');
    trust = await TrustStore.load(key.pub);
  });

  async function model(files: Record<string, string>): Promise<string> {
    copies += 1;
    const dir = join(work, `model-${copies}`);
    for (const [name, content] of Object.entries(files)) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), content);
    }
    return dir;
  }

  test('verifies nested folders, and leaves .git, .gitattributes, .github and .gitignore out by default', async () => {
    const dir = await model({ 'd0/f00': 'a', 'd0/d1/f01': 'b', f1: 'c', '.hidden': 'd' });
    await signFolder(dir, key.key);
    for (const [name, content] of Object.entries({
      '.git/HEAD': 'ref',
      '.github/workflows/x.yml': 'on: push',
      '.gitignore': '*.tmp',
      '.gitattributes': '* text',
    })) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), content);
    }
    const verified = await verifies(dir, { trust });
    assert.deepEqual(
      verified.files.map((f) => f.name),
      ['.hidden', 'd0/d1/f01', 'd0/f00', 'f1'],
    );
    assert.deepEqual(verified.ignored, ['.git', '.gitattributes', '.github', '.gitignore', 'model.sig']);
    await rejects(dir, { trust, ignoreGitPaths: false }, 'CHECKSUM_UNLISTED_ENTRY', /\.git/);
    // Only those four, at the root, as the reference.
    await writeFile(join(dir, '.gitmodules'), '');
    await rejects(dir, { trust }, 'CHECKSUM_UNLISTED_ENTRY', /\.gitmodules/);
  });

  test("honours the signer's ignore_paths, which the signature covers", async () => {
    const dir = await model({ 'weights.bin': 'w', 'cache/tmp': 'x' });
    const digest = createHash('sha256').update('w').digest('hex');
    const statement = statementFor('m', [{ name: 'weights.bin', digest }], (s) => {
      (s.predicate as { serialization: Record<string, unknown> }).serialization.ignore_paths = ['cache'];
    });
    await writeFile(join(dir, 'model.sig'), await bundleFor(statement, key.key));
    assert.deepEqual((await verifies(dir, { trust })).ignored, ['cache', 'model.sig']);
  });

  test('ignores the named signature file when it lies inside the folder', async () => {
    const dir = await model({ 'weights.bin': 'w' });
    await signFolder(dir, key.key);
    await cp(join(dir, 'model.sig'), join(dir, 'other.sig'));
    const verified = await verifies(dir, { trust, signature: join(dir, 'other.sig') });
    assert.ok(verified.ignored.includes('other.sig'));
  });

  test('refuses a symbolic link, a FIFO, and a model that is itself a link', async () => {
    const linked = await model({ 'weights.bin': 'w' });
    await signFolder(linked, key.key);
    await symlink('weights.bin', join(linked, 'alias.bin'));
    await rejects(linked, { trust }, 'PATH_UNSAFE', /symbolic link/);
    const fifo = await model({ 'weights.bin': 'w' });
    await signFolder(fifo, key.key);
    execFileSync('mkfifo', [join(fifo, 'pipe')]);
    await rejects(fifo, { trust }, 'PATH_UNSAFE', /not a regular file/);
    const real = await model({ 'weights.bin': 'w' });
    await signFolder(real, key.key);
    const link = join(work, 'model-link');
    await symlink(real, link);
    await rejects(link, { trust }, 'PATH_UNSAFE', /symbolic link/);
  });

  test('takes --ignore-paths outside the model for a usage error', async () => {
    const dir = await model({ 'weights.bin': 'w' });
    await signFolder(dir, key.key);
    await assert.rejects(
      verifies(dir, { trust, ignorePaths: ['../elsewhere'] }),
      (e: unknown) => e instanceof HotocrError && e.code === 'USAGE' && /inside the model/.test(e.message),
    );
    assert.equal(
      (await verifies(dir, { trust, ignorePaths: [relative(process.cwd(), join(dir, 'x'))] })).form,
      'directory',
    );
  });
});

describe('ZIP archives carrying model.sig', () => {
  async function zip(dir: string, out: string, names = '*'): Promise<string> {
    execFileSync('sh', ['-c', `cd '${dir}' && zip -q -X '${out}' ${names}`]);
    return out;
  }

  test('verify as the folder they were made from, and are told apart from hotocr packages', async () => {
    const path = await zip(join(FIXTURES, 'v1.0.0-sigstore'), join(work, 'keyless.zip'));
    assert.equal(await omsFormOf(path), 'archive');
    const model = await verifies(path, { keyless: KEYLESS });
    assert.equal(model.form, 'archive');
    assert.match(model.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(
      model.files.map((f) => f.name),
      ['signme-1', 'signme-2'],
    );
    const withIgnored = await zip(join(FIXTURES, 'v1.0.1-elliptic-key'), join(work, 'key.zip'));
    await rejects(withIgnored, { trust: keyTrust }, 'CHECKSUM_UNLISTED_ENTRY', /ignore-me/);
    assert.equal(
      (await verifies(withIgnored, { trust: keyTrust, ignorePaths: ['ignore-me'] })).flavour,
      'key',
    );
  });

  test('refuses an entry changed or added', async () => {
    const dir = await copy('v1.0.0-certificate');
    await appendFile(join(dir, 'signme-1'), 'x');
    await rejects(await zip(dir, join(work, 'changed.zip')), { trust: caTrust }, 'CHECKSUM_MISMATCH');
    const extra = await copy('v1.0.0-certificate');
    await writeFile(join(extra, 'extra'), 'x');
    await rejects(await zip(extra, join(work, 'extra.zip')), { trust: caTrust }, 'CHECKSUM_UNLISTED_ENTRY');
  });

  test("checks and reports a hotocr model's config.json when the signature covers it", async () => {
    const key = await opensslKey(work, 'zip-key', 'ec-p256');
    const src = await sourceDir(join(work, 'hotocr-model'));
    await signFolder(src, key.key);
    const path = await zip(src, join(work, 'hotocr-oms.zip'));
    const model = await verifies(path, { trust: await TrustStore.load(key.pub) });
    assert.equal(model.manifest?.name, 'ppocr');
    assert.equal(model.manifest?.version, '2.1.0');
    const expired = await sourceDir(
      join(work, 'expired-model'),
      manifest({ expires: '2020-01-01T00:00:00Z' }),
    );
    await signFolder(expired, key.key);
    await rejects(
      await zip(expired, join(work, 'expired-oms.zip')),
      { trust: await TrustStore.load(key.pub) },
      'PACKAGE_EXPIRED',
    );
  });

  test('leaves hotocr packages to the package verifier', async () => {
    const keys = await opensslKey(work, 'pkg', 'ec-p256');
    const src = await sourceDir(join(work, 'pkg-src'));
    const pkg = await packWith(src, keys.key, join(work, 'pkg.zip'));
    assert.equal(await omsFormOf(pkg), undefined);
    assert.equal(await omsFormOf(join(work, 'missing.zip')), undefined);
    assert.equal(await omsFormOf(join(FIXTURES, 'README.md')), undefined);
  });
});
