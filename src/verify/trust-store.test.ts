import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FIXTURES } from '../../test/helpers/oms.js';
import { opensslKey } from '../../test/helpers/openssl.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { PackageRejectedError, TrustStoreError } from '../errors.js';
import { verifyOmsModel } from './oms-verify.js';
import { parseIdentityList, TrustStore } from './trust-store.js';

const work = tempDir();
const IDENTITY = 'stefanb@us.ibm.com';
const ISSUER = 'https://sigstore.verify.ibm.com/oauth2';
let counter = 0;

/** A trust folder holding these files (name → text). */
async function trustFolder(files: Record<string, string>): Promise<string> {
  counter += 1;
  const dir = join(work, `trust-${counter}`);
  await mkdir(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe('Sigstore identities in the trust folder', () => {
  test('a .identities file lists an identity and its issuer per line; comments and blank lines are skipped', () => {
    const list = parseIdentityList(
      'release.identities',
      `# who signs our models keyless\n\n${IDENTITY} ${ISSUER}\n  https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main\thttps://token.actions.githubusercontent.com  \n`,
    );
    assert.deepEqual(list, [
      { identity: IDENTITY, issuer: ISSUER, source: 'release.identities', line: 3 },
      {
        identity: 'https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main',
        issuer: 'https://token.actions.githubusercontent.com',
        source: 'release.identities',
        line: 4,
      },
    ]);
  });

  for (const [line, why] of [
    [IDENTITY, /1 field/],
    [`${IDENTITY} ${ISSUER} extra`, /3 field/],
    [`${IDENTITY} accounts.google.com`, /not an http\(s\) URL/],
    [`${IDENTITY} file:///etc/issuer`, /not an http\(s\) URL/],
  ] as const)
    test(`refuses the line ${JSON.stringify(line)}, naming the file and line`, () => {
      assert.throws(
        () => parseIdentityList('release.identities', `# ok\n${line}\n`),
        (error: unknown) => {
          assert.ok(error instanceof TrustStoreError);
          assert.match(error.message, /release\.identities line 2/);
          assert.match(error.message, why);
          return true;
        },
      );
    });

  test('a folder of identities alone is a trust store; it lists them as entries', async () => {
    const store = await TrustStore.load(await trustFolder({ 'ibm.identities': `${IDENTITY} ${ISSUER}\n` }));
    assert.equal(store.keys.length, 0);
    assert.deepEqual(
      store.identities.map((i) => [i.identity, i.issuer]),
      [[IDENTITY, ISSUER]],
    );
    const [entry] = store.entries();
    assert.equal(entry?.kind, 'identity');
    assert.equal(entry?.identity, IDENTITY);
    assert.equal(entry?.issuer, ISSUER);
    assert.equal(entry?.source, 'ibm.identities:1');
    assert.match(entry?.fingerprint ?? '', /^[0-9a-f]{64}$/);
  });

  test('one .identities file can be the whole trust store; keys beside it still load', async () => {
    const dir = await trustFolder({ 'ibm.identities': `${IDENTITY} ${ISSUER}\n` });
    assert.equal((await TrustStore.load(join(dir, 'ibm.identities'))).identities.length, 1);
    const key = await opensslKey(dir, 'release', 'ec-p256');
    const both = await TrustStore.load(dir);
    assert.equal(both.keys.length, 1);
    assert.equal(both.identities.length, 1);
    assert.ok(key.pub.endsWith('.pub'));
  });

  test('a folder with nothing to trust is still refused', async () => {
    await assert.rejects(TrustStore.load(await trustFolder({ 'notes.txt': 'hello' })), /\.identities/);
  });
});

describe('keyless OMS signatures trusted through the trust folder', () => {
  test('verify for an identity the trust folder names, without --identity; the signer says which line', async () => {
    const trust = await TrustStore.load(
      await trustFolder({ 'ibm.identities': `someone@example.com ${ISSUER}\n${IDENTITY} ${ISSUER}\n` }),
    );
    const model = await verifyOmsModel(join(FIXTURES, 'v1.0.0-sigstore'), 'directory', { trust });
    assert.equal(model.signer.kind, 'keyless');
    if (model.signer.kind !== 'keyless') return;
    assert.equal(model.signer.identity, IDENTITY);
    assert.equal(model.signer.trustedAs, 'ibm.identities line 2');
  });

  test('are refused for an identity named with another issuer, or not named at all', async () => {
    const otherIssuer = await TrustStore.load(
      await trustFolder({ 'ibm.identities': `${IDENTITY} https://accounts.google.com\n` }),
    );
    await assert.rejects(
      verifyOmsModel(join(FIXTURES, 'v1.0.0-sigstore'), 'directory', { trust: otherIssuer }),
      (error: unknown) => {
        assert.ok(error instanceof PackageRejectedError);
        assert.equal(error.code, 'IDENTITY_MISMATCH');
        assert.match(error.message, /accounts\.google\.com.*ibm\.identities line 1/);
        return true;
      },
    );
    const stranger = await TrustStore.load(
      await trustFolder({ 'others.identities': `someone@example.com ${ISSUER}\n` }),
    );
    await assert.rejects(
      verifyOmsModel(join(FIXTURES, 'v1.0.0-sigstore'), 'directory', { trust: stranger }),
      (error: unknown) => {
        assert.ok(error instanceof PackageRejectedError);
        assert.equal(error.code, 'IDENTITY_MISMATCH');
        assert.match(error.message, /stefanb@us\.ibm\.com.*someone@example\.com.*others\.identities line 1/);
        return true;
      },
    );
  });

  test('are refused when the trust store names no identity', async () => {
    const keysOnly = await TrustStore.load(join(FIXTURES, 'keys', 'signing-key-pub.pem'));
    await assert.rejects(
      verifyOmsModel(join(FIXTURES, 'v1.0.0-sigstore'), 'directory', { trust: keysOnly }),
      (error: unknown) => {
        assert.ok(error instanceof PackageRejectedError);
        assert.equal(error.code, 'KEY_UNTRUSTED');
        assert.match(error.message, /\.identities/);
        return true;
      },
    );
  });
});
