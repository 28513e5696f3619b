import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { FIXTURES } from './helpers/oms.js';
import { opensslKey } from './helpers/openssl.js';
import { packWith, sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const run = promisify(execFile);
const work = tempDir();
const KEY = join(FIXTURES, 'keys', 'signing-key-pub.pem');
const CA = join(FIXTURES, 'keys', 'ca-cert.pem');
const IDENTITY = ['--identity', 'stefanb@us.ibm.com', '--issuer', 'https://sigstore.verify.ibm.com/oauth2'];
const at = (...parts: string[]) => join(FIXTURES, ...parts);

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

describe('hotocr verify: the reference commands of the OMS fixtures, in hotocr words', () => {
  const cases: [string, string[]][] = [
    [
      'key, single file',
      [
        at('v1.0.0-elliptic-key', 'signme-1'),
        '--signature',
        at('v1.0.0-elliptic-key', 'model.sig'),
        '--trust',
        KEY,
      ],
    ],
    [
      'key, folder',
      [at('v1.0.1-elliptic-key'), '--trust', KEY, '--ignore-paths', at('v1.0.1-elliptic-key', 'ignore-me')],
    ],
    ['certificate 1.0.0', [at('v1.0.0-certificate'), '--trust', CA]],
    [
      'certificate 1.0.1',
      [at('v1.0.1-certificate'), '--trust', CA, '--ignore-paths', at('v1.0.1-certificate', 'ignore-me')],
    ],
    ['keyless 1.0.0', [at('v1.0.0-sigstore'), ...IDENTITY]],
    [
      'keyless 1.0.1',
      [at('v1.0.1-sigstore'), ...IDENTITY, '--ignore-paths', at('v1.0.1-sigstore', 'ignore-me')],
    ],
  ];
  for (const [what, args] of cases) {
    test(`${what}: exit 0 and names the signer`, async () => {
      const r = await hotocr('verify', ...args);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /^OK: \S+ \(OMS (key|certificate|keyless), \d file\(s\), digest [0-9a-f]{64}\) signed by /,
      );
    });
  }

  test('--json reports the flavour and the signer of each flavour', async () => {
    const key = JSON.parse(
      (await hotocr('verify', at('v1.0.0-certificate'), '--trust', CA, '--json')).stdout,
    );
    assert.equal(key.ok, true);
    assert.equal(key.format, 'oms');
    assert.equal(key.flavour, 'certificate');
    assert.deepEqual(
      [key.signer.kind, key.signer.subject, key.signer.root],
      ['certificate', 'CN=intermediate-ca', 'CN=root-ca'],
    );
    const byKey = JSON.parse(
      (
        await hotocr(
          'verify',
          at('v1.0.1-elliptic-key'),
          '--trust',
          KEY,
          '--ignore-paths',
          'ignore-me',
          '--json',
        )
      ).stdout,
    );
    assert.equal(byKey.flavour, 'key');
    assert.match(byKey.signer.fingerprint, /^[0-9a-f]{64}$/);
    assert.deepEqual(byKey.ignored, ['ignore-me', 'model.sig']);
    const keyless = JSON.parse((await hotocr('verify', at('v1.0.0-sigstore'), ...IDENTITY, '--json')).stdout);
    assert.equal(keyless.flavour, 'keyless');
    assert.equal(keyless.signer.identity, 'stefanb@us.ibm.com');
    assert.equal(keyless.signer.issuer, 'https://sigstore.verify.ibm.com/oauth2');
    assert.equal(keyless.signer.integratedTime, '2025-05-03T01:34:46.000Z');
  });
});

describe('hotocr verify: OMS refusals', () => {
  test('exit 1 with CODE: sentence for a changed file, as text and as JSON', async () => {
    const dir = join(work, 'changed');
    await cp(at('v1.0.0-sigstore'), dir, { recursive: true });
    await appendFile(join(dir, 'signme-1'), '!');
    const r = await hotocr('verify', dir, ...IDENTITY);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^CHECKSUM_MISMATCH: "signme-1" /);
    const json = JSON.parse((await hotocr('verify', dir, ...IDENTITY, '--json')).stdout);
    assert.deepEqual([json.ok, json.code, json.format], [false, 'CHECKSUM_MISMATCH', 'oms']);
  });

  test('another identity or issuer, exit 1', async () => {
    const other = await hotocr(
      'verify',
      at('v1.0.0-sigstore'),
      '--identity',
      'x@example.com',
      '--issuer',
      IDENTITY[3]!,
    );
    assert.equal(other.code, 1);
    assert.match(other.stdout, /^IDENTITY_MISMATCH: /);
    const issuer = await hotocr(
      'verify',
      at('v1.0.0-sigstore'),
      '--identity',
      IDENTITY[1]!,
      '--issuer',
      'https://github.com/login/oauth',
    );
    assert.equal(issuer.code, 1);
    assert.match(issuer.stdout, /^IDENTITY_MISMATCH: /);
  });

  test('usage errors exit 2: whom to trust unsaid, --identity without --issuer, an unreadable trusted root', async () => {
    const none = await hotocr('verify', at('v1.0.0-sigstore'));
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^USAGE: .*--trust.*--identity/);
    const half = await hotocr('verify', at('v1.0.0-sigstore'), '--identity', 'stefanb@us.ibm.com');
    assert.equal(half.code, 2);
    assert.match(half.stderr, /^USAGE: /);
    const badRoot = join(work, 'root.json');
    await writeFile(badRoot, '{}');
    const root = await hotocr('verify', at('v1.0.0-sigstore'), ...IDENTITY, '--trusted-root', badRoot);
    assert.equal(root.code, 2);
    assert.match(root.stderr, /^TRUST_STORE_INVALID: /);
  });
});

describe('hotocr verify: hotocr packages as before', () => {
  let pkg: string;
  let pub: string;
  before(async () => {
    const keys = await opensslKey(work, 'pkg', 'ec-p256');
    pub = keys.pub;
    pkg = await packWith(await sourceDir(join(work, 'src')), keys.key, join(work, 'ppocr.zip'));
  });

  test('the same line and the same JSON keys', async () => {
    const r = await hotocr('verify', pkg, '--trust', pub);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^OK: ppocr 2\.1\.0 \(sha256 [0-9a-f]{64}\) signed by key SHA256:/);
    const json = JSON.parse((await hotocr('verify', pkg, '--trust', pub, '--json')).stdout);
    assert.deepEqual(Object.keys(json), ['ok', 'code', 'message', 'name', 'version', 'sha256', 'signer']);
  });

  test('still needs --trust, and refuses the OMS options as a usage error', async () => {
    const r = await hotocr('verify', pkg, ...IDENTITY);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^USAGE: --identity, --issuer apply to OMS-signed models .* verified as a hotocr package/,
    );
    const ignore = await hotocr('verify', pkg, '--trust', pub, '--ignore-paths', 'x');
    assert.equal(ignore.code, 2);
  });
});
