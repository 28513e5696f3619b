// test-needs: model
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { renderText } from './helpers/images.js';
import { LEAF_EXT, opensslIssue, opensslRoot } from './helpers/openssl.js';
import { sourceDir, standardPackage } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const run = promisify(execFile);

async function hotocr(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, HOTOCR_HOME: join(work, 'home') },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const work = tempDir();
let src: string;
let pkg: string;

before(async () => {
  src = await sourceDir(join(work, 'src'));
  const keygen = await hotocr('keygen', '--type', 'ed25519', '--out', join(work, 'keys'));
  assert.equal(keygen.code, 0, keygen.stderr);
  pkg = join(work, 'ppocr-2.1.0.zip');
  const packed = await hotocr('pack', src, '--key', join(work, 'keys', 'signing.key'), '--out', pkg);
  assert.equal(packed.code, 0, packed.stderr);
});

describe('hotocr keygen', () => {
  test('writes a private key only its owner can read, and a public key', async () => {
    assert.equal((await stat(join(work, 'keys', 'signing.key'))).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(join(work, 'keys'))).sort(), ['signing.key', 'signing.pub']);
  });

  test('refuses to overwrite an existing key pair without --force', async () => {
    const again = await hotocr('keygen', '--type', 'rsa', '--out', join(work, 'keys'));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^KEY_EXISTS: .*--force/);
  });

  test('rejects an unknown key type as a usage error', async () => {
    const bad = await hotocr('keygen', '--type', 'dsa', '--out', join(work, 'k2'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /dsa/);
  });
});

describe('hotocr verify', () => {
  test('exits 0 and names the signer for a valid package', async () => {
    const r = await hotocr('verify', pkg, '--trust', join(work, 'keys', 'signing.pub'));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^OK: ppocr 2\.1\.0 \(sha256 [0-9a-f]{64}\) signed by key SHA256:[0-9a-f]{16}/);
  });

  test('prints {ok, code, message, name, version, sha256, signer} with --json', async () => {
    const r = await hotocr('verify', pkg, '--trust', join(work, 'keys', 'signing.pub'), '--json');
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out), ['ok', 'code', 'message', 'name', 'version', 'sha256', 'signer']);
    assert.equal(out.ok, true);
    assert.equal(out.code, null);
    assert.equal(out.signer.algorithm, 'ed25519');
  });

  test('exits 1 and prints CODE: sentence for a package signed by an untrusted key', async () => {
    const other = tempDir();
    await hotocr('keygen', '--type', 'rsa', '--bits', '2048', '--out', other);
    const r = await hotocr('verify', pkg, '--trust', join(other, 'signing.pub'));
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^(KEY_UNTRUSTED|SIGNATURE_INVALID): /);
  });

  test('reports a refusal as JSON with its code and the package hash', async () => {
    const tampered = await standardPackage(
      src,
      join(work, 'keys', 'signing.key'),
      join(work, 'tampered.zip'),
      {
        rawin: true,
        afterSign: "sed -i 's/2.1.0/2.1.1/' config.json",
      },
    );
    const r = await hotocr('verify', tampered, '--trust', join(work, 'keys', 'signing.pub'), '--json');
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, false);
    assert.equal(out.code, 'CHECKSUM_MISMATCH');
    assert.match(out.sha256, /^[0-9a-f]{64}$/);
  });

  test('exits 2 when the trust store cannot be read', async () => {
    const r = await hotocr('verify', pkg, '--trust', join(work, 'nope.pem'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^TRUST_STORE_INVALID: /);
  });

  test('refuses a private key passed as a trust store', async () => {
    const r = await hotocr('verify', pkg, '--trust', join(work, 'keys', 'signing.key'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /private key/);
  });
});

describe('hotocr pack', () => {
  test('writes no package when the manifest is invalid', async () => {
    const bad = await sourceDir(join(work, 'bad-src'), { format: 'hotocr/v1', name: 'x' });
    const out = join(work, 'bad.zip');
    const r = await hotocr('pack', bad, '--key', join(work, 'keys', 'signing.key'), '--out', out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^CONFIG_INVALID: /);
    assert.deepEqual(
      (await readdir(work)).filter((n) => n.includes('bad.zip')),
      [],
    );
  });
});

describe('hotocr inspect', () => {
  test('shows the manifest and every entry, and says it did not verify', async () => {
    const r = await hotocr('inspect', pkg);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /model {4}ppocr 2\.1\.0/);
    assert.match(r.stdout, /NOT VERIFIED/);
    assert.match(r.stdout, /det\.onnx .* ok/);
  });

  test('shows a signer certificate whose subject is empty (named by its alternative name alone)', async () => {
    const dir = join(work, 'anonymous');
    await mkdir(dir);
    const root = await opensslRoot(dir, 'root');
    const leaf = await opensslIssue(dir, 'leaf', root, {
      ext: [...LEAF_EXT, 'subjectAltName=critical,email:signer@example.com'],
      keyType: 'ec-p256',
      cn: '',
    });
    const signed = join(work, 'anonymous.zip');
    const packed = await hotocr('pack', src, '--key', leaf.key, '--cert', leaf.cert, '--out', signed);
    assert.equal(packed.code, 0, packed.stderr);
    const r = await hotocr('inspect', signed, '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.signerCertificates[0].subject, '');
    assert.equal(out.signerCertificates[0].issuer, 'CN=root');
  });

  test('reports an archive it cannot read with its code', async () => {
    const r = await hotocr('inspect', join(work, 'keys', 'signing.pub'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ARCHIVE_INVALID: /);
  });
});

describe('hotocr ocr', () => {
  test('prints one JSON object per image per line, and a clear error for a file that is not an image', async () => {
    const page = join(work, 'page.png');
    await writeFile(page, await renderText(['Command line 2026']));
    const r = await hotocr('ocr', page, join(work, 'keys', 'signing.pub'), page, '--json');
    assert.equal(r.code, 1, 'one of the files was not an image');
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    for (const out of lines) {
      assert.deepEqual(Object.keys(out), ['file', 'model', 'lines', 'timings']);
      assert.deepEqual(out.model, { name: 'ppocr', version: '4.0.0' });
      assert.equal(out.lines[0].text.replace(/ /g, ''), 'Commandline2026');
    }
    assert.match(r.stderr, /signing\.pub: IMAGE_INVALID: /);
  });
});
