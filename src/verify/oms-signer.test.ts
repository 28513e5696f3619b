import assert from 'node:assert/strict';
import { createHash, createPublicKey, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { dsse } from '@sigstore/core';
import { bundleFor, FIXTURES, type Material, statementFor } from '../../test/helpers/oms.js';
import {
  CA_EXT,
  LEAF_EXT,
  opensslIssue,
  opensslKey,
  opensslRoot,
  type TestCert,
  type TestKeyType,
} from '../../test/helpers/openssl.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { PackageRejectedError, type RejectionCode } from '../errors.js';
import { verifyChain } from './cert-chain.js';
import { parseOmsBundle } from './oms-bundle.js';
import { type OmsSigner, verifyTrustSigned } from './oms-signer.js';
import { TrustStore } from './trust-store.js';

const work = tempDir();
const KEYS = join(FIXTURES, 'keys');
const statement = statementFor('model', [
  { name: 'weights.bin', digest: createHash('sha256').update('weights').digest('hex') },
]);

function check(
  bundle: string | Buffer,
  trust: TrustStore,
  at: Partial<{ now: Date; validAt: Date }> = {},
): OmsSigner {
  const parsed = parseOmsBundle(Buffer.isBuffer(bundle) ? bundle : Buffer.from(bundle));
  const now = at.now ?? new Date();
  const options = { trust, now, validAt: at.validAt ?? now, checkpoint: () => {} };
  return verifyTrustSigned(parsed, options);
}

/** SHA-256 (hex) of a certificate file's DER: how a deny list names it. */
async function certificateFingerprint(file: string): Promise<string> {
  return createHash('sha256')
    .update(new X509Certificate(await readFile(file)).raw)
    .digest('hex');
}

function refuses(
  bundle: string | Buffer,
  trust: TrustStore,
  code: RejectionCode,
  pattern?: RegExp,
  at: Partial<{ now: Date; validAt: Date }> = {},
): void {
  assert.throws(
    () => check(bundle, trust, at),
    (error: unknown) => {
      assert.ok(error instanceof PackageRejectedError, String(error));
      assert.equal(error.code, code, error.message);
      if (pattern) assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('the key flavour', () => {
  let fixtureTrust: TrustStore;
  before(async () => {
    fixtureTrust = await TrustStore.load(join(KEYS, 'signing-key-pub.pem'));
  });

  test("verifies the reference's P-384 signatures (SHA-384), with the key embedded or named by a hint", () => {
    for (const folder of ['v1.0.0-elliptic-key', 'v1.0.1-elliptic-key']) {
      const signer = check(readFileSync(join(FIXTURES, folder, 'model.sig')), fixtureTrust);
      assert.equal(signer.kind, 'key');
      assert.equal(signer.kind === 'key' && signer.algorithm, 'ecdsa-p384-sha384');
      assert.equal(signer.kind === 'key' && signer.source, 'signing-key-pub.pem');
    }
  });

  for (const [type, algorithm] of [
    ['ec-p256', 'ecdsa-p256-sha256'],
    ['ec-p384', 'ecdsa-p384-sha384'],
    ['ec-p521', 'ecdsa-p521-sha512'],
  ] as const) {
    for (const style of ['hint', 'rawBytes', 'none'] as const) {
      test(`verifies a ${type} signature (${algorithm}) whose bundle carries ${style === 'none' ? 'no key' : `its ${style}`}`, async () => {
        const keys = await opensslKey(work, `${type}-${style}`, type as TestKeyType);
        const signer = check(
          await bundleFor(statement, keys.key, { kind: 'key', style }),
          await TrustStore.load(keys.pub),
        );
        assert.equal(signer.kind === 'key' && signer.algorithm, algorithm);
      });
    }
  }

  test('refuses a signature by a key the trust store does not hold', async () => {
    const stranger = await opensslKey(work, 'stranger', 'ec-p384');
    refuses(await bundleFor(statement, stranger.key), fixtureTrust, 'KEY_UNTRUSTED', /not signed by any/);
    refuses(
      readFileSync(join(FIXTURES, 'v1.0.1-elliptic-key', 'model.sig')),
      await TrustStore.load(stranger.pub),
      'KEY_UNTRUSTED',
    );
  });

  test('refuses a bundle whose statement was re-signed by another key, whatever key it names', async () => {
    const original = JSON.parse(readFileSync(join(FIXTURES, 'v1.0.1-elliptic-key', 'model.sig'), 'utf8'));
    const stranger = await opensslKey(work, 're-signer', 'ec-p384');
    const resigned = JSON.parse(await bundleFor(statement, stranger.key));
    // The trusted key's hint kept, the envelope replaced: the hint is not trusted for itself.
    resigned.verificationMaterial = {
      publicKey: {
        hint: createHash('sha256')
          .update(
            createPublicKey(readFileSync(join(KEYS, 'signing-key-pub.pem'))).export({
              type: 'spki',
              format: 'pem',
            }),
          )
          .digest('hex'),
      },
    };
    refuses(JSON.stringify(resigned), fixtureTrust, 'SIGNATURE_INVALID', /changed after signing/);
    // The statement edited, the trusted key's signature kept.
    original.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    refuses(JSON.stringify(original), fixtureTrust, 'SIGNATURE_INVALID', /changed after signing/);
  });

  test('refuses a hint naming another key than the trusted one that signed', async () => {
    const keys = await opensslKey(work, 'hinted', 'ec-p256');
    const bundle = JSON.parse(await bundleFor(statement, keys.key));
    bundle.verificationMaterial.publicKey.hint = 'ab'.repeat(32);
    refuses(JSON.stringify(bundle), await TrustStore.load(keys.pub), 'OMS_BUNDLE_INVALID', /hint/);
  });

  test('refuses P-384 signed with SHA-256: the reference signs by the curve, and so does hotocr verify', async () => {
    const keys = await opensslKey(work, 'p384-sha256', 'ec-p384');
    const bundle = JSON.parse(await bundleFor(statement, keys.key));
    const pae = dsse.preAuthEncoding('application/vnd.in-toto+json', Buffer.from(JSON.stringify(statement)));
    bundle.dsseEnvelope.signatures[0].sig = sign('sha256', pae, {
      key: await readFile(keys.key, 'utf8'),
      dsaEncoding: 'der',
    }).toString('base64');
    refuses(JSON.stringify(bundle), await TrustStore.load(keys.pub), 'SIGNATURE_INVALID');
  });

  test('refuses a truncated signature as damaged', async () => {
    const keys = await opensslKey(work, 'cut', 'ec-p256');
    const bundle = JSON.parse(await bundleFor(statement, keys.key));
    const sig = Buffer.from(bundle.dsseEnvelope.signatures[0].sig, 'base64');
    bundle.dsseEnvelope.signatures[0].sig = sig.subarray(0, sig.length - 5).toString('base64');
    refuses(JSON.stringify(bundle), await TrustStore.load(keys.pub), 'SIGNATURE_INVALID', /truncated/);
  });

  test('refuses when only RSA or Ed25519 keys are trusted: OMS signs with EC keys', async () => {
    const rsa = await opensslKey(work, 'rsa-only', 'rsa');
    refuses(
      readFileSync(join(FIXTURES, 'v1.0.1-elliptic-key', 'model.sig')),
      await TrustStore.load(rsa.pub),
      'KEY_UNTRUSTED',
      /EC key/,
    );
  });

  test("applies the trust store's deny list and Not-After to the key", async () => {
    const pub = readFileSync(join(KEYS, 'signing-key-pub.pem'), 'utf8');
    const der = createHash('sha256')
      .update(createPublicKey(pub).export({ type: 'spki', format: 'der' }))
      .digest('hex');
    const bundle = readFileSync(join(FIXTURES, 'v1.0.1-elliptic-key', 'model.sig'));
    refuses(
      bundle,
      TrustStore.fromPem([{ source: 'k.pub', text: pub }], [{ fingerprint: der, source: 'x.deny', line: 1 }]),
      'KEY_UNTRUSTED',
      /deny list/,
    );
    refuses(
      bundle,
      TrustStore.fromPem([{ source: 'k.pub', text: `Not-After: 2020-01-01T00:00:00Z\n${pub}` }]),
      'KEY_UNTRUSTED',
      /only until/,
    );
  });
});

describe('the certificate flavour', () => {
  let caTrust: TrustStore;
  let root: TestCert;
  let intermediate: TestCert;

  before(async () => {
    caTrust = await TrustStore.load(join(KEYS, 'ca-cert.pem'));
    root = await opensslRoot(work, 'root');
    intermediate = await opensslIssue(work, 'intermediate', root, { ext: CA_EXT, days: 1000 });
  });

  async function chainBundle(
    leaf: TestCert,
    chain: string[] = [leaf.cert, intermediate.cert],
  ): Promise<string> {
    return bundleFor(statement, leaf.key, { kind: 'certificate', chain } satisfies Material);
  }

  test("verifies the reference's chains to the pinned CA, whose signing certificate is marked CA:TRUE", () => {
    for (const folder of ['v1.0.0-certificate', 'v1.0.1-certificate']) {
      const signer = check(readFileSync(join(FIXTURES, folder, 'model.sig')), caTrust);
      assert.equal(signer.kind, 'certificate');
      assert.equal(signer.kind === 'certificate' && signer.subject, 'CN=intermediate-ca');
      assert.equal(signer.kind === 'certificate' && signer.root, 'CN=root-ca');
      assert.equal(signer.kind === 'certificate' && signer.algorithm, 'ecdsa-p384-sha384');
    }
  });

  test('keeps refusing a CA:TRUE signer in signer.pem: only OMS takes one', () => {
    const pem = Buffer.concat([
      readFileSync(join(KEYS, 'signing-key-cert.pem')),
      readFileSync(join(KEYS, 'int-ca-cert.pem')),
    ]);
    assert.throws(
      () => verifyChain(pem, caTrust.roots, { now: new Date() }),
      (e: unknown) =>
        e instanceof PackageRejectedError && e.code === 'CERT_CHAIN_INVALID' && /CA:TRUE/.test(e.message),
    );
  });

  test('verifies an end-entity code-signing chain made with openssl, each curve with its digest', async () => {
    for (const type of ['ec-p256', 'ec-p521'] as const) {
      const leaf = await opensslIssue(work, `leaf-${type}`, intermediate, { ext: LEAF_EXT, keyType: type });
      const signer = check(await chainBundle(leaf), await TrustStore.load(root.cert));
      assert.equal(signer.kind === 'certificate' && signer.subject, `CN=leaf-${type}`);
    }
  });

  test('refuses a chain to a root that is not pinned', async () => {
    const leaf = await opensslIssue(work, 'leaf-foreign', intermediate, {
      ext: LEAF_EXT,
      keyType: 'ec-p256',
    });
    refuses(await chainBundle(leaf), caTrust, 'CERT_CHAIN_INVALID', /not pinned/);
  });

  test("keeps hotocr's chain rules: dates, usages, order, length, the deny list", async () => {
    const trust = await TrustStore.load(root.cert);
    const leaf = await opensslIssue(work, 'leaf-rules', intermediate, {
      ext: LEAF_EXT,
      keyType: 'ec-p256',
      days: 30,
    });
    const bundle = await chainBundle(leaf);
    refuses(bundle, trust, 'CERT_EXPIRED', /expired/, { validAt: new Date(Date.now() + 40 * 86400_000) });
    refuses(await chainBundle(leaf, [intermediate.cert, leaf.cert]), trust, 'CERT_CHAIN_INVALID');
    refuses(
      await chainBundle(leaf, [
        leaf.cert,
        intermediate.cert,
        intermediate.cert,
        intermediate.cert,
        intermediate.cert,
        root.cert,
      ]),
      trust,
      'CERT_CHAIN_INVALID',
      /at most 5/,
    );
    const noSign = await opensslIssue(work, 'leaf-nosign', intermediate, {
      ext: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyEncipherment'],
      keyType: 'ec-p256',
    });
    refuses(await chainBundle(noSign), trust, 'CERT_CHAIN_INVALID', /digitalSignature/);
    const tls = await opensslIssue(work, 'leaf-tls', intermediate, {
      ext: [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
      ],
      keyType: 'ec-p256',
    });
    refuses(await chainBundle(tls), trust, 'CERT_CHAIN_INVALID', /codeSigning/);
    const weak = await opensslIssue(work, 'leaf-sha1', intermediate, {
      ext: LEAF_EXT,
      keyType: 'ec-p256',
      md: 'sha1',
    });
    refuses(await chainBundle(weak), trust, 'CERT_CHAIN_INVALID', /SHA1|sha1/i);
    const fingerprint = await certificateFingerprint(leaf.cert);
    refuses(
      bundle,
      TrustStore.fromPem(
        [{ source: 'root.crt', text: await readFile(root.cert, 'utf8') }],
        [{ fingerprint, source: 'revoked.deny', line: 1, note: 'leaked' }],
      ),
      'CERT_CHAIN_INVALID',
      /deny list/,
    );
  });

  test('refuses a signature the certificate key did not make, and a signing key OMS does not use', async () => {
    const leaf = await opensslIssue(work, 'leaf-other', intermediate, { ext: LEAF_EXT, keyType: 'ec-p256' });
    const stranger = await opensslKey(work, 'stranger-cert', 'ec-p256');
    const trust = await TrustStore.load(root.cert);
    refuses(
      await bundleFor(statement, stranger.key, {
        kind: 'certificate',
        chain: [leaf.cert, intermediate.cert],
      }),
      trust,
      'SIGNATURE_INVALID',
    );
    const rsaLeaf = await opensslIssue(work, 'leaf-rsa', intermediate, { ext: LEAF_EXT, keyType: 'rsa' });
    const ecKey = await opensslKey(work, 'any-ec', 'ec-p256');
    refuses(
      await bundleFor(statement, ecKey.key, {
        kind: 'certificate',
        chain: [rsaLeaf.cert, intermediate.cert],
      }),
      trust,
      'OMS_UNSUPPORTED',
      /ECDSA/,
    );
  });

  test('with no root pinned, takes a chain-signed bundle by its trusted key, as `model_signing verify key` and signer.pem do', async () => {
    const bundle = readFileSync(join(FIXTURES, 'v1.0.1-certificate', 'model.sig'));
    const signer = check(bundle, await TrustStore.load(join(KEYS, 'signing-key-pub.pem')));
    assert.equal(signer.kind, 'key');
    assert.equal(signer.kind === 'key' && signer.source, 'signing-key-pub.pem');
    // Another key: refused as a stranger's signature.
    const other = await opensslKey(work, 'other-p384', 'ec-p384');
    refuses(bundle, await TrustStore.load(other.pub), 'KEY_UNTRUSTED', /certificate chain.*no root/);
    // The chain's own key, trusted, over a statement changed after signing.
    const parsed = JSON.parse(bundle.toString('utf8'));
    const payload = JSON.parse(Buffer.from(parsed.dsseEnvelope.payload, 'base64').toString('utf8'));
    payload.subject[0].name = 'renamed';
    parsed.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    refuses(
      JSON.stringify(parsed),
      await TrustStore.load(join(KEYS, 'signing-key-pub.pem')),
      'SIGNATURE_INVALID',
      /signing certificate's key/,
    );
    // Nothing to check it with at all.
    refuses(bundle, TrustStore.fromPem([]), 'KEY_UNTRUSTED', /no root certificate/);
  });

  test("taken by key, the chain must be the signing key's, and none of it denied", async () => {
    const signing = await opensslKey(work, 'by-key-signer', 'ec-p256');
    const keyTrust = await TrustStore.load(signing.pub);
    const own = await opensslIssue(work, 'by-key-own', intermediate, {
      ext: LEAF_EXT,
      keyType: 'ec-p256',
      key: signing.key,
    });
    const chain = { kind: 'certificate', chain: [own.cert, intermediate.cert] } as const;
    assert.equal(check(await bundleFor(statement, signing.key, chain), keyTrust).kind, 'key');
    // Signed by the trusted key, but carrying another signer's certificate.
    const other = await opensslIssue(work, 'by-key-other', intermediate, {
      ext: LEAF_EXT,
      keyType: 'ec-p256',
    });
    refuses(
      await bundleFor(statement, signing.key, {
        kind: 'certificate',
        chain: [other.cert, intermediate.cert],
      }),
      keyTrust,
      'OMS_BUNDLE_INVALID',
      /another key than trusted key/,
    );
    // The intermediate is denied: no path may use it, whatever trusts the key.
    const fingerprint = await certificateFingerprint(intermediate.cert);
    refuses(
      await bundleFor(statement, signing.key, chain),
      TrustStore.fromPem(
        [{ source: 'signer.pub', text: await readFile(signing.pub, 'utf8') }],
        [{ fingerprint, source: 'revoked.deny', line: 1, note: 'compromised CA' }],
      ),
      'KEY_UNTRUSTED',
      /deny list/,
    );
  });
});
