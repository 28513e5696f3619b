// test-needs: softhsm
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { chmod, copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ecdsaRawToDer } from '../src/pack/index.js';
import { checkOmsPackage } from './helpers/oms.js';
import { opensslKey } from './helpers/openssl.js';
import { sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const run = promisify(execFile);
const work = tempDir();
const PIN = '246810';
let env: NodeJS.ProcessEnv;
let src: string;

async function sh(command: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(command, args, { cwd: work, env });
  return stdout;
}

async function hotocr(
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Only the intended package, no temporary file, in the output folder. */
async function outputs(): Promise<string[]> {
  return (await readdir(join(work, 'out'))).sort();
}

const p11 = (key: string) => ['--pkcs11-module', MODULE, '--pkcs11-token', 'release', '--pkcs11-key', key];

before(async () => {
  // A SoftHSM token of the test's own, with keys generated inside it (never extractable).
  await writeFile(
    join(work, 'softhsm2.conf'),
    `directories.tokendir = ${join(work, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  await sh('mkdir', '-p', join(work, 'tokens'), join(work, 'out'));
  env = { ...process.env, SOFTHSM2_CONF: join(work, 'softhsm2.conf'), HOTOCR_HOME: join(work, 'home') };
  await sh(
    'softhsm2-util',
    '--init-token',
    '--free',
    '--label',
    'release',
    '--pin',
    PIN,
    '--so-pin',
    '13579',
  );
  const tool = ['--module', MODULE, '--token-label', 'release', '--login', '--pin', PIN];
  await sh(
    'pkcs11-tool',
    ...tool,
    '--keypairgen',
    '--key-type',
    'rsa:2048',
    '--label',
    'rsa-2026',
    '--id',
    '01',
  );
  await sh(
    'pkcs11-tool',
    ...tool,
    '--keypairgen',
    '--key-type',
    'EC:prime256v1',
    '--label',
    'ec-2026',
    '--id',
    '02',
  );
  for (const label of ['rsa-2026', 'ec-2026']) {
    await sh(
      'pkcs11-tool',
      ...['--module', MODULE, '--token-label', 'release', '--read-object', '--type', 'pubkey'],
      ...['--label', label, '-o', join(work, `${label}.der`)],
    );
    await sh('openssl', 'pkey', '-pubin', '-inform', 'DER', '-in', `${label}.der`, '-out', `${label}.pub`);
  }
  src = await sourceDir(join(work, 'src'));
});

describe('signing inside a PKCS#11 token (SoftHSM)', () => {
  test('the keys were made inside the token and cannot leave it', async () => {
    const listing = await sh(
      'pkcs11-tool',
      ...['--module', MODULE, '--token-label', 'release', '--login', '--pin', PIN, '--list-objects'],
      ...['--type', 'privkey'],
    );
    const access = listing.split('\n').filter((l) => l.includes('Access:'));
    assert.equal(access.length, 2);
    for (const line of access) assert.match(line, /never extractable/);
  });

  for (const [label, opensslArgs] of [
    ['rsa-2026', ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-2']],
    ['ec-2026', []],
  ] as const) {
    test(`${label}: the package verifies with the exported public key and with openssl dgst -verify`, async () => {
      const out = join(work, 'out', `${label}.zip`);
      const packed = await hotocr(['pack', src, ...p11(label), '--out', out], { HOTOCR_PKCS11_PIN: PIN });
      assert.equal(packed.code, 0, packed.stderr);
      const verified = await hotocr(['verify', out, '--trust', join(work, `${label}.pub`), '--json']);
      assert.equal(verified.code, 0, verified.stdout);
      assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);

      await sh(
        'sh',
        '-c',
        `unzip -p ${out} checksum.sha256 > ${label}.checksum && unzip -p ${out} signature.sig > ${label}.sig`,
      );
      const ok = await sh(
        'openssl',
        ...['dgst', '-sha256', ...opensslArgs, '-verify', `${label}.pub`, '-signature', `${label}.sig`],
        `${label}.checksum`,
      );
      assert.match(ok, /Verified OK/);
    });
  }

  test('a wrong PIN, a missing key label, a missing token and a missing module are clear errors and write nothing', async () => {
    const before = await outputs();
    const out = join(work, 'out', 'never.zip');
    for (const [args, extra, code] of [
      [p11('rsa-2026'), { HOTOCR_PKCS11_PIN: '000000' }, /PKCS11_PIN_INCORRECT/],
      [p11('no-such-key'), { HOTOCR_PKCS11_PIN: PIN }, /PKCS11_KEY_NOT_FOUND/],
      [
        ['--pkcs11-module', MODULE, '--pkcs11-token', 'nope', '--pkcs11-key', 'rsa-2026'],
        { HOTOCR_PKCS11_PIN: PIN },
        /PKCS11_TOKEN_NOT_FOUND/,
      ],
      [
        [
          '--pkcs11-module',
          join(work, 'missing.so'),
          '--pkcs11-token',
          'release',
          '--pkcs11-key',
          'rsa-2026',
        ],
        { HOTOCR_PKCS11_PIN: PIN },
        /PKCS11_MODULE_INVALID/,
      ],
    ] as const) {
      const r = await hotocr(['pack', src, ...args, '--out', out], extra);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, code);
    }
    const noPin = await hotocr(['pack', src, ...p11('rsa-2026'), '--out', out], { HOTOCR_PKCS11_PIN: '' });
    assert.equal(noPin.code, 2);
    assert.match(noPin.stderr, /HOTOCR_PKCS11_PIN/);
    assert.deepEqual(await outputs(), before);
  });

  test('--format oms signs inside the token with P-384 and P-521 (SHA-384, SHA-512): the package checks out by an independent reading', async () => {
    const tool = ['--module', MODULE, '--token-label', 'release', '--login', '--pin', PIN];
    for (const [label, curve, id] of [
      ['ec384-oms', 'secp384r1', '03'],
      ['ec521-oms', 'secp521r1', '04'],
    ] as const) {
      await sh(
        'pkcs11-tool',
        ...tool,
        '--keypairgen',
        '--key-type',
        `EC:${curve}`,
        '--label',
        label,
        '--id',
        id,
      );
      // pkcs11-tool cannot export these keys as DER; its listing gives the point to build the PEM from.
      const listing = await sh(
        'pkcs11-tool',
        ...['--module', MODULE, '--token-label', 'release', '--list-objects', '--type', 'pubkey'],
      );
      const block = listing
        .split('Public Key Object')
        .find((b) => new RegExp(`label:\\s+${label}\\n`).test(b));
      const point = Buffer.from(/EC_POINT:\s+([0-9a-f]+)/.exec(block!)![1]!, 'hex');
      // A DER OCTET STRING (04, a length of one or two bytes) around 04 || x || y.
      const raw = point.subarray(point[1]! & 0x80 ? 2 + (point[1]! & 0x7f) : 2);
      const size = (raw.length - 1) / 2;
      const pem = createPublicKey({
        key: {
          kty: 'EC',
          crv: curve === 'secp384r1' ? 'P-384' : 'P-521',
          x: raw.subarray(1, 1 + size).toString('base64url'),
          y: raw.subarray(1 + size).toString('base64url'),
        },
        format: 'jwk',
      }).export({ type: 'spki', format: 'pem' }) as string;
      await writeFile(join(work, `${label}.pub`), pem);
      const out = join(work, 'out', `${label}.zip`);
      const packed = await hotocr(['pack', src, '--format', 'oms', ...p11(label), '--out', out], {
        HOTOCR_PKCS11_PIN: PIN,
      });
      assert.equal(packed.code, 0, packed.stderr);
      assert.match(packed.stdout, curve === 'secp384r1' ? /ecdsa-p384-sha384/ : /ecdsa-p521-sha512/);
      await checkOmsPackage(
        out,
        await readFile(join(work, `${label}.pub`), 'utf8'),
        join(work, `unpacked-${label}`),
      );
      const verified = await hotocr(['verify', out, '--trust', join(work, `${label}.pub`)]);
      assert.equal(verified.code, 0, verified.stdout);
    }
  });
});

describe('signing with an external command', () => {
  test('a signer script made by the test signs a package that verifies (DER, raw r||s and base64 answers)', async () => {
    const ec = await opensslKey(work, 'kms-ec', 'ec-p256');
    const rsa = await opensslKey(work, 'kms-rsa', 'rsa');
    const script = join(work, 'kms-sign.sh');
    // Like a KMS command line: bytes in, signature out (here openssl holds the key).
    await writeFile(script, `#!/bin/sh\nexec openssl dgst -sha256 "$@"\n`);
    await chmod(script, 0o755);
    for (const [name, command, pub] of [
      ['ec-der', `${script} -sign ${ec.key}`, ec.pub],
      ['ec-base64', `${script} -sign ${ec.key} | base64`, ec.pub],
      ['rsa', `${script} -sigopt rsa_padding_mode:pss -sign ${rsa.key}`, rsa.pub],
    ] as const) {
      const out = join(work, 'out', `cmd-${name}.zip`);
      const r = await hotocr(['pack', src, '--sign-command', command, '--public-key', pub, '--out', out]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      const v = await hotocr(['verify', out, '--trust', pub]);
      assert.equal(v.code, 0, `${name}: ${v.stdout}`);
    }
  });

  test('raw ECDSA r||s as tokens and KMSs return it becomes the DER openssl writes', () => {
    for (const namedCurve of ['P-256', 'P-384']) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
      for (let i = 0; i < 20; i++) {
        const data = Buffer.from(`checksum ${i}`);
        const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        assert.ok(verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, ecdsaRawToDer(raw)));
      }
    }
    assert.throws(() => ecdsaRawToDer(Buffer.alloc(63)), /r\|\|s/);
  });

  test('a command that fails, prints nothing, or signs with another key writes no package', async () => {
    const ec = await opensslKey(work, 'kms-ec2', 'ec-p256');
    const other = await opensslKey(work, 'kms-other', 'ec-p256');
    const before = await outputs();
    const out = join(work, 'out', 'never.zip');
    for (const [command, code] of [
      ['echo "KMS: access denied" >&2; exit 1', /SIGN_COMMAND_FAILED.*access denied/],
      ['cat > /dev/null', /SIGN_COMMAND_EMPTY/],
      [`openssl dgst -sha256 -sign ${other.key}`, /SIGNATURE_INVALID|KEY_UNTRUSTED|does not verify/],
    ] as const) {
      const r = await hotocr(['pack', src, '--sign-command', command, '--public-key', ec.pub, '--out', out]);
      assert.equal(r.code, 1, `${command}: ${r.stderr}`);
      assert.match(r.stderr, code);
    }
    const noKey = await hotocr(['pack', src, '--sign-command', 'true', '--out', out]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /--public-key/);
    assert.deepEqual(await outputs(), before);
  });
});

describe('key rotation', () => {
  test('old and new keys both verify while both are trusted; the old one is refused once removed or past its Not-After', async () => {
    const keys = join(work, 'rot');
    const trust = join(work, 'trust');
    await sh('mkdir', '-p', keys, trust);
    const old = await opensslKey(keys, 'old', 'ed25519');
    const current = await opensslKey(keys, 'new', 'ec-p256');
    const oldPem = await readFile(old.pub, 'utf8');
    await writeFile(join(trust, 'old.pub'), oldPem);
    await copyFile(current.pub, join(trust, 'new.pub'));
    const signedOld = join(work, 'out', 'rot-old.zip');
    const signedNew = join(work, 'out', 'rot-new.zip');
    assert.equal((await hotocr(['pack', src, '--key', old.key, '--out', signedOld])).code, 0);
    assert.equal((await hotocr(['pack', src, '--key', current.key, '--out', signedNew])).code, 0);
    const check = async (pkg: string) => {
      const r = await hotocr(['verify', pkg, '--trust', trust, '--json']);
      return JSON.parse(r.stdout) as {
        ok: boolean;
        code: string | null;
        message: string;
        signer: { source: string; notAfter?: string };
      };
    };

    // Both trusted: both verify, and each reports the key that signed it.
    assert.equal((await check(signedOld)).signer.source, 'old.pub');
    assert.equal((await check(signedNew)).signer.source, 'new.pub');

    // A Not-After still ahead is reported; one behind refuses the old key's packages only.
    await writeFile(join(trust, 'old.pub'), `Not-After: 2099-01-01T00:00:00Z\n${oldPem}`);
    assert.equal((await check(signedOld)).signer.notAfter, '2099-01-01T00:00:00.000Z');
    await writeFile(join(trust, 'old.pub'), `Not-After: 2020-01-01T00:00:00Z\n${oldPem}`);
    const expired = await check(signedOld);
    assert.equal(expired.ok, false);
    assert.equal(expired.code, 'KEY_UNTRUSTED');
    assert.match(expired.message, /only until 2020-01-01/);
    assert.equal((await check(signedNew)).ok, true);
    await writeFile(join(trust, 'old.pub'), `Not-After: someday\n${oldPem}`);
    const malformed = await hotocr(['verify', signedNew, '--trust', trust]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /Not-After: someday/);

    // Removed: the old key's packages are refused, the new key's still verify.
    await rm(join(trust, 'old.pub'));
    const removed = await check(signedOld);
    assert.equal(removed.ok, false);
    assert.equal(removed.code, 'KEY_UNTRUSTED');
    assert.equal((await check(signedNew)).ok, true);
  });
});
