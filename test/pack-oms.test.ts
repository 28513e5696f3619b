/**
 * `hotocr pack --format oms`: packages signed with OpenSSF Model Signing as the reference's key
 * method signs, checked here by an independent reading (unzip, a PAE built by hand, the digests
 * computed again), verified as a folder by `hotocr verify`, and refused for keys OMS does not sign with.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { checkOmsPackage } from './helpers/oms.js';
import {
  CA_EXT,
  LEAF_EXT,
  opensslIssue,
  opensslKey,
  opensslRoot,
  type TestKeyType,
} from './helpers/openssl.js';
import { FILES, sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const run = promisify(execFile);
const work = tempDir();
let counter = 0;

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

/** `hotocr pack SRC --format oms --key KEY --cert CHAIN --out OUT`. */
function packWithCert(src: string, key: string, chain: string, out: string) {
  return hotocr('pack', src, '--format', 'oms', '--key', key, '--cert', chain, '--out', out);
}

async function freshSource(): Promise<string> {
  counter += 1;
  return sourceDir(join(work, `model-${counter}`));
}

/** The files of the output folder, to see that a refused pack leaves nothing, not even a temporary file. */
const outputs = async () =>
  (await readdir(work)).filter((n) => n.endsWith('.zip') || n.endsWith('.tmp')).sort();

let p384: { key: string; pub: string };

before(async () => {
  p384 = await opensslKey(work, 'release-p384', 'ec-p384');
});

describe('hotocr pack --format oms', () => {
  for (const type of ['ec-p256', 'ec-p384', 'ec-p521'] as TestKeyType[])
    test(`with a ${type} key file: the package checks out by an independent reading, and the folder verifies with hotocr verify`, async () => {
      const key = await opensslKey(work, `key-${type}`, type);
      const src = await freshSource();
      const out = join(work, `oms-${type}.zip`);
      const packed = await hotocr('pack', src, '--format', 'oms', '--key', key.key, '--out', out);
      assert.equal(packed.code, 0, packed.stderr);
      assert.match(packed.stdout, /OMS \(model\.sig\) ecdsa-p(256-sha256|384-sha384|521-sha512)/);
      const check = await checkOmsPackage(
        out,
        await readFile(key.pub, 'utf8'),
        join(work, `unpacked-${type}`),
      );
      assert.deepEqual(
        check.statement.predicate.resources.map((r) => r.name),
        ['cls.onnx', 'config.json', 'det.onnx', 'keys.txt', 'rec.onnx'],
      );
      assert.equal(check.statement.subject[0]!.name, src.split('/').pop());
      assert.match(packed.stdout, new RegExp(`model digest ${check.statement.subject[0]!.digest.sha256}`));
      assert.deepEqual(check.statement.predicate.serialization.ignore_paths, [
        '.git',
        '.gitattributes',
        '.github',
        '.gitignore',
        'model.sig',
      ]);
      // The folder it was made from, with the signature beside its files, as the reference leaves it.
      await copyFile(join(check.unpacked, 'model.sig'), join(src, 'model.sig'));
      const folder = await hotocr('verify', src, '--trust', key.pub, '--json');
      assert.equal(folder.code, 0, folder.stdout + folder.stderr);
      const report = JSON.parse(folder.stdout);
      assert.equal(report.form, 'directory');
      assert.equal(report.flavour, 'key');
      assert.equal(report.digest, check.statement.subject[0]!.digest.sha256);
      // And the ZIP, as a server takes it.
      const zip = await hotocr('verify', out, '--trust', key.pub);
      assert.equal(zip.code, 0, zip.stdout);
    });

  test('a model.sig already in the folder is made again, not packed as a file', async () => {
    const src = await freshSource();
    await writeFile(join(src, 'model.sig'), '{"left": "by an earlier signing"}');
    const out = join(work, 'resigned.zip');
    const packed = await hotocr('pack', src, '--format', 'oms', '--key', p384.key, '--out', out);
    assert.equal(packed.code, 0, packed.stderr);
    const check = await checkOmsPackage(
      out,
      await readFile(p384.pub, 'utf8'),
      join(work, 'unpacked-resigned'),
    );
    assert.ok(!check.statement.predicate.resources.some((r) => r.name === 'model.sig'));
  });

  test('without --format oms, a model.sig in the folder is one more file of the hotocr package, as before', async () => {
    const src = await freshSource();
    await writeFile(join(src, 'model.sig'), '{"left": "by an earlier signing"}');
    const out = join(work, 'hotocr-with-model-sig.zip');
    assert.equal((await hotocr('pack', src, '--key', p384.key, '--out', out)).code, 0);
    const { stdout } = await run('unzip', ['-p', out, 'checksum.sha256']);
    assert.match(stdout, / {2}model\.sig$/m);
    assert.equal((await hotocr('verify', out, '--trust', p384.pub)).code, 0);
  });

  for (const type of ['rsa', 'ed25519'] as TestKeyType[])
    test(`refuses a ${type} key with a sentence saying why, and writes nothing`, async () => {
      const key = await opensslKey(work, `refused-${type}`, type);
      const before = await outputs();
      const out = join(work, `refused-${type}.zip`);
      const packed = await hotocr(
        'pack',
        await freshSource(),
        '--format',
        'oms',
        '--key',
        key.key,
        '--out',
        out,
      );
      assert.equal(packed.code, 1);
      assert.match(packed.stderr, /^KEY_INVALID: .*ECDSA on P-256, P-384 or P-521/);
      assert.match(packed.stderr, type === 'rsa' ? /an RSA key/ : /an ED25519 key/);
      assert.deepEqual(await outputs(), before);
    });

  test('signs through --sign-command with the curve digest (openssl dgst -sha384 for P-384)', async () => {
    const out = join(work, 'command.zip');
    const packed = await hotocr(
      'pack',
      await freshSource(),
      '--format',
      'oms',
      '--sign-command',
      `openssl dgst -sha384 -sign '${p384.key}'`,
      '--public-key',
      p384.pub,
      '--out',
      out,
    );
    assert.equal(packed.code, 0, packed.stderr);
    await checkOmsPackage(out, await readFile(p384.pub, 'utf8'), join(work, 'unpacked-command'));
  });

  test('refuses a command that hashes with another digest than its curve, or signs with another key; writes nothing', async () => {
    const before = await outputs();
    const sha256 = await hotocr(
      'pack',
      await freshSource(),
      '--format',
      'oms',
      '--sign-command',
      `openssl dgst -sha256 -sign '${p384.key}'`,
      '--public-key',
      p384.pub,
      '--out',
      join(work, 'wrong-digest.zip'),
    );
    assert.equal(sha256.code, 1);
    assert.match(sha256.stderr, /^PACK_SELF_CHECK_FAILED: .*SHA384.*openssl dgst -sha384/);
    const other = await opensslKey(work, 'other-p384', 'ec-p384');
    const stranger = await hotocr(
      'pack',
      await freshSource(),
      '--format',
      'oms',
      '--sign-command',
      `openssl dgst -sha384 -sign '${other.key}'`,
      '--public-key',
      p384.pub,
      '--out',
      join(work, 'wrong-key.zip'),
    );
    assert.equal(stranger.code, 1);
    assert.match(stranger.stderr, /^PACK_SELF_CHECK_FAILED: /);
    assert.deepEqual(await outputs(), before);
  });

  test('hotocr inspect reads an OMS package against its statement: each entry ok or MISMATCH, and how it is signed', async () => {
    const out = join(work, 'inspected.zip');
    assert.equal(
      (await hotocr('pack', await freshSource(), '--format', 'oms', '--key', p384.key, '--out', out)).code,
      0,
    );
    const text = await hotocr('inspect', out);
    assert.equal(text.code, 0, text.stderr);
    assert.doesNotMatch(text.stdout, /not listed|no checksum\.sha256|signature none/);
    assert.match(text.stdout, /^ {2}det\.onnx .* ok$/m);
    assert.match(
      text.stdout,
      /^signature model\.sig \(OpenSSF Model Signing, by key [0-9a-f]{16}\.\.\.\), model digest [0-9a-f]{64}$/m,
    );
    const json = JSON.parse((await hotocr('inspect', out, '--json')).stdout) as {
      entries: { name: string; matches: boolean | null }[];
      oms: { material: string; modelDigest: string } | null;
    };
    assert.deepEqual(
      json.entries.map((e) => [e.name, e.matches]),
      [
        ['cls.onnx', true],
        ['config.json', true],
        ['det.onnx', true],
        ['keys.txt', true],
        ['rec.onnx', true],
        ['model.sig', null],
      ],
    );
    assert.equal(json.oms?.material, 'key');
    // A dictionary changed after signing, zipped again with its model.sig.
    const dir = join(work, 'inspect-tampered');
    await run('unzip', ['-q', out, '-d', dir]);
    await writeFile(join(dir, 'keys.txt'), 'x\n');
    const bad = join(work, 'inspect-tampered.zip');
    await run('zip', ['-q', '-j', bad, ...FILES.map((f) => join(dir, f)), join(dir, 'model.sig')]);
    assert.match((await hotocr('inspect', bad)).stdout, /^ {2}keys\.txt .* MISMATCH$/m);
  });

  test('with --cert: model.sig carries the chain, as the certificate method writes it, and verifies against its root', async () => {
    const root = await opensslRoot(work, 'oms-root', { keyType: 'ec-p384' });
    const intermediate = await opensslIssue(work, 'oms-int', root, { ext: CA_EXT, keyType: 'ec-p256' });
    const leaf = await opensslIssue(work, 'oms-leaf', intermediate, { ext: LEAF_EXT, keyType: 'ec-p384' });
    const chainPem = join(work, 'oms-chain.pem');
    await writeFile(
      chainPem,
      (await readFile(leaf.cert, 'utf8')) + (await readFile(intermediate.cert, 'utf8')),
    );
    const src = await freshSource();
    const out = join(work, 'oms-cert.zip');
    const packed = await packWithCert(src, leaf.key, chainPem, out);
    assert.equal(packed.code, 0, packed.stderr);
    const der = (file: string) => new X509Certificate(readFileSync(file)).raw;
    await checkOmsPackage(
      out,
      new X509Certificate(readFileSync(leaf.cert)).publicKey.export({
        type: 'spki',
        format: 'pem',
      }) as string,
      join(work, 'unpacked-cert'),
      { chain: [der(leaf.cert), der(intermediate.cert)] },
    );
    const verified = await hotocr('verify', out, '--trust', root.cert, '--json');
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const report = JSON.parse(verified.stdout);
    assert.equal(report.flavour, 'certificate');
    assert.match(JSON.stringify(report), /oms-leaf/);
    // A root it does not chain to is refused.
    const other = await opensslRoot(work, 'oms-other-root', { keyType: 'ec-p256' });
    assert.equal((await hotocr('verify', out, '--trust', other.cert)).code, 1);
  });

  test('--cert for another key than the signing key, or a chain verify would refuse, writes nothing; a chain of one is taken', async () => {
    const root = await opensslRoot(work, 'oms-root-2', { keyType: 'ec-p256' });
    const leaf = await opensslIssue(work, 'oms-leaf-2', root, { ext: LEAF_EXT, keyType: 'ec-p256' });
    const before = await outputs();
    const src = await freshSource();
    const wrongKey = await packWithCert(src, p384.key, leaf.cert, join(work, 'wrong.zip'));
    assert.equal(wrongKey.code, 1, wrongKey.stderr);
    assert.match(wrongKey.stderr, /CERT_INVALID.*not for the signing key/);
    // No digitalSignature: a verifier (the reference's too) refuses it as a signer.
    const noUsage = await opensslIssue(work, 'oms-leaf-3', root, {
      ext: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyEncipherment'],
      keyType: 'ec-p256',
    });
    const refused = await packWithCert(src, noUsage.key, noUsage.cert, join(work, 'usage.zip'));
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /CERT_INVALID/);
    assert.deepEqual(await outputs(), before);
    // The same signer's own certificate, issued by the root itself: a chain of one.
    const alone = join(work, 'oms-cert-alone.zip');
    const packed = await packWithCert(src, leaf.key, leaf.cert, alone);
    assert.equal(packed.code, 0, packed.stderr);
    assert.equal((await hotocr('verify', alone, '--trust', root.cert)).code, 0);
  });

  test('a format it does not know is a usage error', async () => {
    const src = await freshSource();
    const format = await hotocr(
      'pack',
      src,
      '--format',
      'onnx',
      '--key',
      p384.key,
      '--out',
      join(work, 'f.zip'),
    );
    assert.equal(format.code, 2);
    assert.match(format.stderr, /hotocr or oms/);
  });
});
