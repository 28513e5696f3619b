import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { bundleFor, FIXTURES } from '../../test/helpers/oms.js';
import { opensslIssue, opensslKey, opensslRoot } from '../../test/helpers/openssl.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { PackageRejectedError, type RejectionCode, TrustStoreError } from '../errors.js';
import { parseOmsBundle } from './oms-bundle.js';
import { certificateIdentities, verifyKeyless } from './oms-keyless.js';
import type { OmsSigner } from './oms-signer.js';
import { loadSigstoreTrustedRoot, type SigstoreTrustedRoot } from './oms-trusted-root.js';
import { TrustStore } from './trust-store.js';

const work = tempDir();
const IDENTITY = 'stefanb@us.ibm.com';
const ISSUER = 'https://sigstore.verify.ibm.com/oauth2';
const FOLDERS = ['v1.0.0-sigstore', 'v1.0.1-sigstore'];
let publicGood: SigstoreTrustedRoot;

interface TlogEntry {
  integratedTime: string;
  inclusionPromise?: { signedEntryTimestamp: string };
  inclusionProof?: { hashes: string[]; rootHash: string };
  canonicalizedBody: string;
}
interface KeylessJson {
  verificationMaterial: { certificate: { rawBytes: string }; tlogEntries: TlogEntry[] };
  dsseEnvelope: { payload: string; signatures: { sig: string }[] };
}

const text = (folder: string) => readFileSync(join(FIXTURES, folder, 'model.sig'), 'utf8');

function edited(folder: string, edit: (bundle: KeylessJson) => void): string {
  const bundle = JSON.parse(text(folder)) as KeylessJson;
  edit(bundle);
  return JSON.stringify(bundle);
}

function check(
  bundle: string,
  options: Partial<{
    identity: string;
    issuer: string;
    trustedRoot: SigstoreTrustedRoot;
    trust: TrustStore;
  }> = {},
): OmsSigner {
  const { identity = IDENTITY, issuer = ISSUER, ...rest } = options;
  return verifyKeyless(parseOmsBundle(Buffer.from(bundle)), {
    identities: [{ identity, issuer }],
    trustedRoot: publicGood,
    ...rest,
  });
}

function refuses(
  bundle: string,
  code: RejectionCode,
  pattern: RegExp,
  options: Parameters<typeof check>[1] = {},
): void {
  assert.throws(
    () => check(bundle, options),
    (error: unknown) => {
      assert.ok(error instanceof PackageRejectedError, String(error));
      assert.equal(error.code, code, error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

/** The public-good trusted root @sigstore/tuf ships, as JSON, to edit. */
function publicGoodJson(): Record<string, unknown[]> {
  const seeds = JSON.parse(
    readFileSync(createRequire(import.meta.url).resolve('@sigstore/tuf/seeds.json'), 'utf8'),
  );
  return JSON.parse(
    Buffer.from(seeds['https://tuf-repo-cdn.sigstore.dev'].targets['trusted_root.json'], 'base64').toString(
      'utf8',
    ),
  );
}

async function rootFile(
  name: string,
  edit: (root: Record<string, unknown[]>) => void,
): Promise<SigstoreTrustedRoot> {
  const root = publicGoodJson();
  edit(root);
  const path = join(work, name);
  await writeFile(path, JSON.stringify(root));
  return loadSigstoreTrustedRoot(path);
}

before(async () => {
  publicGood = await loadSigstoreTrustedRoot();
});

describe('keyless (Sigstore) signatures that verify offline', () => {
  for (const folder of FOLDERS) {
    test(`${folder}: the certificate, valid when the log recorded it, names the identity and issuer`, () => {
      const signer = check(text(folder));
      assert.equal(signer.kind, 'keyless');
      if (signer.kind !== 'keyless') return;
      assert.equal(signer.identity, IDENTITY);
      assert.equal(signer.issuer, ISSUER);
      assert.match(signer.trustedRoot, /public-good .*@sigstore\/tuf/);
      assert.match(signer.fingerprint, /^[0-9a-f]{64}$/);
      // The certificate lived ten minutes, long ago: only the log's time makes it valid.
      const certificate = new X509Certificate(
        Buffer.from(JSON.parse(text(folder)).verificationMaterial.certificate.rawBytes, 'base64'),
      );
      assert.ok(new Date(certificate.validTo) < new Date(), 'the certificate has expired');
      assert.ok(new Date(signer.integratedTime) <= new Date(certificate.validTo));
      assert.ok(new Date(signer.integratedTime) >= new Date(certificate.validFrom));
    });
  }

  test('verifies against a trusted root given as a file', async () => {
    const root = await rootFile('copy.json', () => {});
    assert.equal(check(text('v1.0.1-sigstore'), { trustedRoot: root }).kind, 'keyless');
    assert.equal(root.source, 'copy.json');
  });
});

describe('keyless signatures refused', () => {
  test('for another identity, matched exactly: not as a pattern, not as a prefix', () => {
    for (const identity of [
      'someone@example.com',
      'stefanb@us.ibm.co.',
      'stefanb',
      '.*',
      'STEFANB@us.ibm.com',
    ])
      refuses(text('v1.0.1-sigstore'), 'IDENTITY_MISMATCH', /--identity/, { identity });
  });

  test('for another issuer, matched exactly', () => {
    for (const issuer of [
      'https://accounts.google.com',
      'https://sigstore.verify.ibm.com/oauth',
      `${ISSUER}/`,
    ])
      refuses(text('v1.0.0-sigstore'), 'IDENTITY_MISMATCH', /--issuer/, { issuer });
  });

  test('when the signed statement was changed, the signature kept', () => {
    const other = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}').toString('base64');
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        b.dsseEnvelope.payload = other;
      }),
      'TLOG_INVALID',
      /records another envelope/,
    );
  });

  test('when re-signed with another key, the certificate and log entry kept', async () => {
    const keys = await opensslKey(work, 'resigner', 'ec-p256');
    const statement = JSON.parse(
      Buffer.from(JSON.parse(text('v1.0.1-sigstore')).dsseEnvelope.payload, 'base64').toString(),
    );
    const resigned = JSON.parse(await bundleFor(statement, keys.key));
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        b.dsseEnvelope.signatures = resigned.dsseEnvelope.signatures;
      }),
      'TLOG_INVALID',
      /transparency-log entry/,
    );
  });

  test('when the signed entry timestamp, the integrated time or the inclusion proof is altered', () => {
    const flip = (b64: string) => {
      const bytes = Buffer.from(b64, 'base64');
      bytes[bytes.length - 3]! ^= 1;
      return bytes.toString('base64');
    };
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        const entry = b.verificationMaterial.tlogEntries[0]!;
        entry.inclusionPromise!.signedEntryTimestamp = flip(entry.inclusionPromise!.signedEntryTimestamp);
      }),
      'TLOG_INVALID',
      /transparency-log/,
    );
    refuses(
      edited('v1.0.0-sigstore', (b) => {
        const entry = b.verificationMaterial.tlogEntries[0]!;
        entry.integratedTime = String(Number(entry.integratedTime) + 60);
      }),
      'TLOG_INVALID',
      /transparency-log/,
    );
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        const proof = b.verificationMaterial.tlogEntries[0]!.inclusionProof!;
        proof.hashes[0] = flip(proof.hashes[0]!);
      }),
      'TLOG_INVALID',
      /transparency-log/,
    );
  });

  test('without the signed entry timestamp (its time is what the certificate is judged at)', () => {
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        delete b.verificationMaterial.tlogEntries[0]!.inclusionPromise;
      }),
      'TLOG_INVALID',
      /timestamp/,
    );
  });

  test('without the inclusion proof a v0.3 bundle must carry', () => {
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        delete b.verificationMaterial.tlogEntries[0]!.inclusionProof;
      }),
      'OMS_BUNDLE_INVALID',
      /inclusionProof/,
    );
  });

  test('a certificate made elsewhere for the same identity and issuer', async () => {
    const root = await opensslRoot(work, 'fake-fulcio', { keyType: 'ec-p256' });
    const leaf = await opensslIssue(work, 'fake-leaf', root, {
      ext: [
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=codeSigning',
        `subjectAltName=critical,email:${IDENTITY}`,
        `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${ISSUER}`,
      ],
      keyType: 'ec-p256',
      cn: '',
    });
    const der = new X509Certificate(await readFile(leaf.cert)).raw.toString('base64');
    refuses(
      edited('v1.0.1-sigstore', (b) => {
        b.verificationMaterial.certificate.rawBytes = der;
      }),
      'CERT_CHAIN_INVALID',
      /certificate authority/,
    );
  });

  test('against a trusted root that lacks the log, the certificate authority, or the CT logs', async () => {
    const withoutLog = await rootFile('no-rekor.json', (r) => {
      r.tlogs = r.tlogs!.filter((t) => (t as { baseUrl: string }).baseUrl !== 'https://rekor.sigstore.dev');
    });
    refuses(text('v1.0.1-sigstore'), 'TLOG_INVALID', /no-rekor\.json/, { trustedRoot: withoutLog });
    const withoutCa = await rootFile('no-fulcio.json', (r) => {
      r.certificateAuthorities = r.certificateAuthorities!.slice(0, 1);
    });
    refuses(text('v1.0.1-sigstore'), 'CERT_CHAIN_INVALID', /certificate authority/, {
      trustedRoot: withoutCa,
    });
    const withoutCt = await rootFile('no-ct.json', (r) => {
      r.ctlogs = [];
    });
    refuses(text('v1.0.1-sigstore'), 'CERT_CHAIN_INVALID', /certificate-transparency/, {
      trustedRoot: withoutCt,
    });
  });

  test("whose certificate is on the trust store's deny list", () => {
    const der = Buffer.from(
      JSON.parse(text('v1.0.1-sigstore')).verificationMaterial.certificate.rawBytes,
      'base64',
    );
    const fingerprint = createHash('sha256').update(der).digest('hex');
    const trust = TrustStore.fromPem(
      [{ source: 'k.pub', text: readFileSync(join(FIXTURES, 'keys', 'signing-key-pub.pem'), 'utf8') }],
      [{ fingerprint, source: 'revoked.deny', line: 3 }],
    );
    refuses(text('v1.0.1-sigstore'), 'CERT_CHAIN_INVALID', /revoked\.deny line 3/, { trust });
  });
});

describe('the identities a certificate names', () => {
  test('are its e-mail addresses, URIs and Sigstore usernames, and nothing else', async () => {
    const root = await opensslRoot(work, 'names-root', { keyType: 'ec-p256' });
    const leaf = await opensslIssue(work, 'names', root, {
      ext: [
        'subjectAltName=critical,email:a@example.com,URI:https://github.com/o/r/.github/workflows/release.yml@refs/heads/main,otherName:1.3.6.1.4.1.57264.1.7;UTF8:builder,otherName:1.2.3.4;UTF8:not-an-identity,DNS:example.com',
      ],
      keyType: 'ec-p256',
      cn: '',
    });
    assert.deepEqual(certificateIdentities(new X509Certificate(await readFile(leaf.cert)).raw), [
      'a@example.com',
      'https://github.com/o/r/.github/workflows/release.yml@refs/heads/main',
      'builder',
    ]);
  });
});

describe('the Sigstore trusted root', () => {
  test('refuses a file that is not one, as an operator error', async () => {
    const notJson = join(work, 'not.json');
    await writeFile(notJson, '{"mediaType": ');
    await assert.rejects(loadSigstoreTrustedRoot(notJson), TrustStoreError);
    const bundle = join(FIXTURES, 'v1.0.1-sigstore', 'model.sig');
    await assert.rejects(loadSigstoreTrustedRoot(bundle), /not a Sigstore trusted root/);
    await assert.rejects(loadSigstoreTrustedRoot(join(work, 'missing.json')), TrustStoreError);
    await assert.rejects(
      rootFile('empty.json', (r) => {
        r.tlogs = [];
      }),
      /no transparency log/,
    );
  });
});
