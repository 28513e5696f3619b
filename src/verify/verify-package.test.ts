import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import {
  CA_EXT,
  LEAF_EXT,
  opensslIssue,
  opensslKey,
  opensslRoot,
  type TestCert,
} from '../../test/helpers/openssl.js';
import { manifest, packWith, sh, sourceDir, standardPackage } from '../../test/helpers/packages.js';
import { makeOverlappingZip, makeZip, type RawEntry, unicodePathField } from '../../test/helpers/raw-zip.js';
import { isolatedTmp, tempDir } from '../../test/helpers/tmp.js';
import { HotocrError, PackageRejectedError, type RejectionCode, TrustStoreError } from '../errors.js';
import { keygen } from '../pack/index.js';
import { TrustStore } from './trust-store.js';
import { type VerifyOptions, verifyPackage } from './verify-package.js';

const work = tempDir();
const tmp = isolatedTmp();
let rsa: { key: string; pub: string };
let trust: TrustStore;
let src: string;

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
  assert.ok(caught.message.length > 20, 'the message says what to do');
  assert.equal(caught.details.path, path, 'the error names the package');
  assert.deepEqual(tmp.leftovers(), [], 'no temporary file is left behind');
  return caught;
}

let counter = 0;
function out(): string {
  counter += 1;
  return join(work, `pkg-${counter}.zip`);
}

/** A fresh copy of the standard source folder, to tamper with. */
async function freshSource(config?: Record<string, unknown>): Promise<string> {
  counter += 1;
  return sourceDir(join(work, `src-${counter}`), config);
}

before(async () => {
  rsa = await opensslKey(work, 'deploy', 'rsa');
  trust = await TrustStore.load(rsa.pub);
  src = await sourceDir(join(work, 'src'));
});

describe('packages that verify', () => {
  for (const type of ['rsa', 'ecdsa', 'ed25519'] as const) {
    test(`accepts a package from hotocr pack signed with ${type}`, async () => {
      const keys = await keygen({ type, out: join(work, `keygen-${type}`) });
      const path = await packWith(src, keys.privateKeyPath, out());
      const pkg = await verifyPackage(path, { trust: await TrustStore.load(keys.publicKeyPath) });
      assert.equal(pkg.manifest.name, 'ppocr');
      assert.equal(pkg.manifest.version, '2.1.0');
      assert.equal(pkg.signer.kind, 'key');
      assert.match(pkg.sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(pkg.entries.map((e) => e.name).sort(), [
        'cls.onnx',
        'config.json',
        'det.onnx',
        'keys.txt',
        'rec.onnx',
      ]);
      assert.equal(pkg.files.size, 0, 'bytes are not kept unless asked for');
    });
  }

  test('keeps the verified bytes of every entry when asked, identical to the source files', async () => {
    const path = await packWith(src, rsa.key, out());
    const pkg = await verifyPackage(path, { trust, keepBytes: true });
    assert.deepEqual(pkg.files.get('det.onnx'), await readFile(join(src, 'det.onnx')));
    assert.deepEqual(pkg.files.get('config.json'), await readFile(join(src, 'config.json')));
  });

  test('keeps the bytes of the entries a function picks, given their signed SHA-256 and the manifest', async () => {
    const path = await packWith(src, rsa.key, out());
    const asked: string[] = [];
    const pkg = await verifyPackage(path, {
      trust,
      keepBytes: (entry, manifest) => {
        asked.push(`${entry.name} ${entry.sha256} ${manifest.version}`);
        return entry.name === 'det.onnx';
      },
    });
    assert.deepEqual([...pkg.files.keys()].sort(), ['config.json', 'det.onnx'], 'the manifest is kept too');
    assert.deepEqual(pkg.files.get('det.onnx'), await readFile(join(src, 'det.onnx')));
    assert.deepEqual(
      asked.sort(),
      pkg.entries
        .filter((e) => e.name !== 'config.json')
        .map((e) => `${e.name} ${e.sha256} 2.1.0`)
        .sort(),
    );
  });

  test('accepts a package made only with sha256sum, openssl (RSA-PSS, default salt) and zip', async () => {
    const pkg = await verifyPackage(await standardPackage(src, rsa.key, out()), { trust });
    assert.equal(pkg.signer.kind === 'key' && pkg.signer.algorithm, 'rsa-pss-sha256');
  });

  for (const salt of ['max', 'digest']) {
    test(`accepts an RSA-PSS signature with the ${salt} salt length convention`, async () => {
      const path = await standardPackage(src, rsa.key, out(), {
        sigopts: ['rsa_padding_mode:pss', `rsa_pss_saltlen:${salt}`],
      });
      await verifyPackage(path, { trust });
    });
  }

  for (const curve of ['ec-p256', 'ec-p384'] as const) {
    test(`accepts an ECDSA ${curve} package made with openssl dgst`, async () => {
      const ec = await opensslKey(work, `deploy-${curve}`, curve);
      const path = await standardPackage(src, ec.key, out(), { sigopts: [] });
      const pkg = await verifyPackage(path, { trust: await TrustStore.load(ec.pub) });
      assert.match(pkg.signer.algorithm, /^ecdsa-p(256|384)-sha256$/);
    });
  }

  for (const [curve, digest] of [
    ['ec-p384', 'sha384'],
    ['ec-p521', 'sha512'],
  ] as const) {
    test(`accepts an ECDSA ${curve} package signed with ${digest}, as other tools sign it`, async () => {
      const ec = await opensslKey(work, `deploy-${curve}-${digest}`, curve);
      const path = await standardPackage(src, ec.key, out(), { sigopts: [], digest });
      const pkg = await verifyPackage(path, { trust: await TrustStore.load(ec.pub) });
      assert.equal(pkg.signer.algorithm, `ecdsa-${curve.slice(3)}-${digest}`);
    });
  }

  test('refuses a P-384 package signed with SHA-512, a pairing no tool makes by default', async () => {
    const ec = await opensslKey(work, 'deploy-p384-512', 'ec-p384');
    const path = await standardPackage(src, ec.key, out(), { sigopts: [], digest: 'sha512' });
    await rejects(path, 'SIGNATURE_INVALID', { trust: await TrustStore.load(ec.pub) });
  });

  test('accepts an Ed25519 package signed with openssl pkeyutl', async () => {
    const ed = await opensslKey(work, 'deploy-ed', 'ed25519');
    const path = await standardPackage(src, ed.key, out(), { rawin: true });
    const pkg = await verifyPackage(path, { trust: await TrustStore.load(ed.pub) });
    assert.equal(pkg.signer.algorithm, 'ed25519');
  });

  test('picks the signing key out of a trust folder holding several', async () => {
    const dir = join(work, 'trust-many');
    await sh(work, `mkdir -p ${dir}`);
    for (const name of ['a', 'b', 'c']) await opensslKey(dir, name, name === 'b' ? 'ec-p256' : 'rsa');
    await sh(dir, 'rm -f *.key');
    await sh(work, `cp '${rsa.pub}' '${dir}/z-deploy.pub'`);
    const pkg = await verifyPackage(await packWith(src, rsa.key, out()), {
      trust: await TrustStore.load(dir),
    });
    assert.equal(pkg.signer.kind === 'key' && pkg.signer.source, 'z-deploy.pub');
  });
});

/** A package made with sha256sum, openssl and zip, whatever signer.pem holds: `hotocr pack` would refuse some. */
async function chainZip(
  signerKey: string,
  certs: string[],
  sigopts = '-sigopt rsa_padding_mode:pss',
): Promise<string> {
  const path = out();
  const pems = certs.map((c) => `'${c}'`).join(' ');
  await sh(
    src,
    `sha256sum config.json det.onnx rec.onnx cls.onnx keys.txt > checksum.sha256
    openssl dgst -sha256 ${sigopts} -sign '${signerKey}' -out signature.sig checksum.sha256
    cat ${pems} > signer.pem
    zip -q -Z store '${path}' config.json det.onnx rec.onnx cls.onnx keys.txt checksum.sha256 signature.sig signer.pem
    rm checksum.sha256 signature.sig signer.pem`,
  );
  return path;
}

describe('certificate chains', () => {
  let root: TestCert;
  let intermediate: TestCert;
  let leaf: TestCert;
  let rootTrust: TrustStore;

  before(async () => {
    root = await opensslRoot(work, 'root');
    intermediate = await opensslIssue(work, 'intermediate', root, {
      ext: [
        ...CA_EXT.slice(0, 0),
        'basicConstraints=critical,CA:TRUE,pathlen:0',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      days: 1000,
    });
    leaf = await opensslIssue(work, 'leaf', intermediate, { ext: LEAF_EXT, days: 30 });
    rootTrust = await TrustStore.load(root.cert);
  });

  // Made with standard tools: `hotocr pack` refuses most of these chains itself.
  const chainPackage = (signer: TestCert, chain: string[]) => chainZip(signer.key, chain);

  test('accepts a root → intermediate → leaf chain made with openssl', async () => {
    const pkg = await verifyPackage(await chainPackage(leaf, [leaf.cert, intermediate.cert]), {
      trust: rootTrust,
    });
    assert.equal(pkg.signer.kind, 'certificate');
    assert.equal(pkg.signer.kind === 'certificate' && pkg.signer.subject, 'CN=leaf');
    assert.equal(pkg.signer.kind === 'certificate' && pkg.signer.root, 'CN=root');
  });

  test('accepts a signer certificate with an empty subject, named by its alternative name alone', async () => {
    const anonymous = await opensslIssue(work, 'anonymous', intermediate, {
      ext: [...LEAF_EXT, 'subjectAltName=critical,email:signer@example.com'],
      cn: '',
      days: 30,
    });
    const pkg = await verifyPackage(await chainPackage(anonymous, [anonymous.cert, intermediate.cert]), {
      trust: rootTrust,
    });
    assert.equal(pkg.signer.kind === 'certificate' && pkg.signer.subject, '');
  });

  test('refuses a chain that ends at a foreign root', async () => {
    const foreign = await opensslRoot(work, 'foreign');
    const path = await chainPackage(leaf, [leaf.cert, intermediate.cert]);
    await rejects(path, 'CERT_CHAIN_INVALID', { trust: await TrustStore.load(foreign.cert) });
  });

  test('refuses an expired signer certificate', async () => {
    const path = await chainPackage(leaf, [leaf.cert, intermediate.cert]);
    const err = await rejects(path, 'CERT_EXPIRED', {
      trust: rootTrust,
      now: new Date(Date.now() + 40 * 86400_000),
    });
    assert.match(err.message, /expired/);
  });

  test('judges certificate dates at validAt (a restart, at acceptance) and the trust store at now', async () => {
    const path = await chainPackage(leaf, [leaf.cert, intermediate.cert]);
    const later = new Date(Date.now() + 40 * 86400_000);
    const pkg = await verifyPackage(path, { trust: rootTrust, now: later, validAt: new Date() });
    assert.equal(pkg.signer.kind, 'certificate');
    // A root rotated out by then is out, whatever the package's own dates.
    const rotated = TrustStore.fromPem([
      {
        source: 'root.crt',
        text: `Not-After: ${new Date(Date.now() + 86400_000).toISOString()}\n${await readFile(root.cert, 'utf8')}`,
      },
    ]);
    await rejects(path, 'KEY_UNTRUSTED', { trust: rotated, now: later, validAt: new Date() });
  });

  test('refuses a signer certificate that is not valid yet', async () => {
    const path = await chainPackage(leaf, [leaf.cert, intermediate.cert]);
    const err = await rejects(path, 'CERT_EXPIRED', {
      trust: rootTrust,
      now: new Date(Date.now() - 86400_000),
    });
    assert.match(err.message, /not valid before/);
  });

  test('refuses a pathlen:0 intermediate that issued another CA', async () => {
    const sub = await opensslIssue(work, 'sub-ca', intermediate, { ext: CA_EXT });
    const subLeaf = await opensslIssue(work, 'sub-leaf', sub, { ext: LEAF_EXT });
    const err = await rejects(
      await chainPackage(subLeaf, [subLeaf.cert, sub.cert, intermediate.cert]),
      'CERT_CHAIN_INVALID',
      { trust: rootTrust },
    );
    assert.match(err.message, /pathLen/);
  });

  test('refuses a chain whose issuer is not a CA (CA:FALSE)', async () => {
    const notCa = await opensslIssue(work, 'not-ca', root, {
      ext: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyCertSign'],
    });
    const below = await opensslIssue(work, 'below-not-ca', notCa, { ext: LEAF_EXT });
    await rejects(await chainPackage(below, [below.cert, notCa.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
  });

  test('refuses a signer certificate without keyUsage digitalSignature', async () => {
    const noSig = await opensslIssue(work, 'no-digsig', intermediate, {
      ext: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyEncipherment'],
    });
    const err = await rejects(
      await chainPackage(noSig, [noSig.cert, intermediate.cert]),
      'CERT_CHAIN_INVALID',
      { trust: rootTrust },
    );
    assert.match(err.message, /digitalSignature/);
  });

  test('refuses a signer certificate whose extKeyUsage lacks codeSigning', async () => {
    const tls = await opensslIssue(work, 'tls-leaf', intermediate, {
      ext: [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
      ],
    });
    await rejects(await chainPackage(tls, [tls.cert, intermediate.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
  });

  test('refuses a certificate with a critical extension it does not understand', async () => {
    const odd = await opensslIssue(work, 'odd-leaf', intermediate, {
      ext: [...LEAF_EXT, '1.2.3.4.5=critical,ASN1:UTF8String:surprise'],
    });
    const err = await rejects(await chainPackage(odd, [odd.cert, intermediate.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
    assert.match(err.message, /1\.2\.3\.4\.5/);
  });

  test('refuses a package signed by a key other than the certificate', async () => {
    const path = join(work, 'wrong-signer.zip');
    await sh(
      src,
      `sha256sum config.json det.onnx rec.onnx cls.onnx keys.txt > checksum.sha256
      openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sign '${rsa.key}' -out signature.sig checksum.sha256
      cat '${leaf.cert}' '${intermediate.cert}' > signer.pem
      zip -q -Z store '${path}' config.json det.onnx rec.onnx cls.onnx keys.txt checksum.sha256 signature.sig signer.pem
      rm checksum.sha256 signature.sig signer.pem`,
    );
    await rejects(path, 'SIGNATURE_INVALID', { trust: rootTrust });
  });
});

describe('certificate chains an adversary makes', () => {
  let root: TestCert;
  let intermediate: TestCert;
  let leaf: TestCert;
  let rootTrust: TrustStore;
  const dir = () => join(work, 'adversary');

  before(async () => {
    await sh(work, 'mkdir -p adversary');
    root = await opensslRoot(dir(), 'adv-root');
    intermediate = await opensslIssue(dir(), 'adv-int', root, { ext: CA_EXT, days: 1000 });
    leaf = await opensslIssue(dir(), 'adv-leaf', intermediate, { ext: LEAF_EXT, days: 30 });
    rootTrust = await TrustStore.load(root.cert);
  });

  test('refuses a certificate loop (A issued by B, B issued by A) without searching for a path', async () => {
    // Two CAs that issued each other: every path search that does not remember where it has been runs forever.
    const a0 = await opensslRoot(dir(), 'loop-a0', { cn: 'loop-A' });
    const b0 = await opensslRoot(dir(), 'loop-b0', { cn: 'loop-B' });
    const a = await opensslIssue(dir(), 'loop-a', b0, { ext: CA_EXT, key: a0.key, cn: 'loop-A' });
    const b = await opensslIssue(dir(), 'loop-b', a0, { ext: CA_EXT, key: b0.key, cn: 'loop-B' });
    const signer = await opensslIssue(dir(), 'loop-leaf', a, { ext: LEAF_EXT });
    for (const chain of [
      [signer.cert, a.cert, b.cert],
      [signer.cert, a.cert, b.cert, a.cert],
      [signer.cert, a.cert, b.cert, a.cert, b.cert],
    ]) {
      const err = await rejects(await chainZip(signer.key, chain), 'CERT_CHAIN_INVALID', {
        trust: rootTrust,
      });
      assert.match(err.message, /signer\.pem/);
    }
  });

  test('refuses more than five certificates before checking any of them', async () => {
    const pems = [leaf.cert, intermediate.cert, ...Array.from({ length: 6 }, () => intermediate.cert)];
    const err = await rejects(await chainZip(leaf.key, pems), 'CERT_CHAIN_INVALID', { trust: rootTrust });
    assert.match(err.message, /at most 5/);
  });

  test('refuses the same certificate twice', async () => {
    const err = await rejects(
      await chainZip(leaf.key, [leaf.cert, intermediate.cert, intermediate.cert]),
      'CERT_CHAIN_INVALID',
      { trust: rootTrust },
    );
    assert.match(err.message, /same key/);
  });

  test('refuses a chain out of order (the intermediate first)', async () => {
    await rejects(await chainZip(leaf.key, [intermediate.cert, leaf.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
  });

  test('refuses a certificate whose issuer name lies: the next one did not sign it', async () => {
    // Same subject name as the real intermediate, another key.
    const impostor = await opensslIssue(dir(), 'impostor', root, { ext: CA_EXT, cn: 'adv-int' });
    const err = await rejects(await chainZip(leaf.key, [leaf.cert, impostor.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
    assert.match(err.message, /not signed by the key of the next/);
  });

  test("accepts a signer certificate that carries its issuer's subject name", async () => {
    const same = await opensslIssue(dir(), 'same-name-leaf', intermediate, { ext: LEAF_EXT, cn: 'adv-int' });
    const pkg = await verifyPackage(await chainZip(same.key, [same.cert, intermediate.cert]), {
      trust: rootTrust,
    });
    assert.equal(pkg.signer.kind === 'certificate' && pkg.signer.subject, 'CN=adv-int');
  });

  test('accepts a chain that ends with the pinned root itself', async () => {
    const pkg = await verifyPackage(await chainZip(leaf.key, [leaf.cert, intermediate.cert, root.cert]), {
      trust: rootTrust,
    });
    assert.equal(pkg.signer.kind === 'certificate' && pkg.signer.root, 'CN=adv-root');
  });

  test('refuses a SHA-1 signed, RSA-1024 intermediate under a pinned RSA-2048 root', async () => {
    const weak = await opensslIssue(dir(), 'weak-int', root, {
      ext: CA_EXT,
      keyType: 'rsa-1024',
      md: 'sha1',
    });
    const below = await opensslIssue(dir(), 'below-weak', weak, { ext: LEAF_EXT, md: 'sha256' });
    const err = await rejects(await chainZip(below.key, [below.cert, weak.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
    assert.match(err.message, /certificate 2 of signer\.pem \(CN=weak-int\)/i);
    assert.match(err.message, /sha1WithRSAEncryption|1024 bits/);
  });

  test('refuses an RSA-1024 intermediate signed with SHA-256', async () => {
    const weak = await opensslIssue(dir(), 'small-int', root, { ext: CA_EXT, keyType: 'rsa-1024' });
    const below = await opensslIssue(dir(), 'below-small', weak, { ext: LEAF_EXT });
    const err = await rejects(await chainZip(below.key, [below.cert, weak.cert]), 'CERT_CHAIN_INVALID', {
      trust: rootTrust,
    });
    assert.match(err.message, /1024 bits/);
  });

  test('refuses a SHA-1 signed leaf', async () => {
    const sha1 = await opensslIssue(dir(), 'sha1-leaf', intermediate, { ext: LEAF_EXT, md: 'sha1' });
    const err = await rejects(
      await chainZip(sha1.key, [sha1.cert, intermediate.cert]),
      'CERT_CHAIN_INVALID',
      {
        trust: rootTrust,
      },
    );
    assert.match(err.message, /certificate 1 of signer\.pem.*sha1WithRSAEncryption/i);
  });

  test('refuses a leaf on a curve outside P-256, P-384 and P-521', async () => {
    const k1 = await opensslIssue(dir(), 'k1-leaf', intermediate, { ext: LEAF_EXT, keyType: 'ec-secp256k1' });
    const err = await rejects(
      await chainZip(k1.key, [k1.cert, intermediate.cert], ''),
      'CERT_CHAIN_INVALID',
      {
        trust: rootTrust,
      },
    );
    assert.match(err.message, /secp256k1/);
  });

  test('accepts a P-521 leaf under an RSA-PSS SHA-384 intermediate', async () => {
    const pss = await opensslIssue(dir(), 'pss-int', root, { ext: CA_EXT, md: 'sha384' });
    await sh(
      dir(),
      `openssl x509 -req -in pss-int.csr -CA adv-root.crt -CAkey adv-root.key -CAcreateserial -days 100 -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -extfile pss-int.ext -extensions v3 -out pss-int.crt 2>/dev/null`,
    );
    const p521 = await opensslIssue(dir(), 'p521-leaf', pss, {
      ext: LEAF_EXT,
      keyType: 'ec-p521',
      md: 'sha512',
    });
    const path = out();
    await sh(
      src,
      `sha256sum config.json det.onnx rec.onnx cls.onnx keys.txt > checksum.sha256
      openssl dgst -sha512 -sign '${p521.key}' -out signature.sig checksum.sha256
      cat '${p521.cert}' '${pss.cert}' > signer.pem
      zip -q -Z store '${path}' config.json det.onnx rec.onnx cls.onnx keys.txt checksum.sha256 signature.sig signer.pem
      rm checksum.sha256 signature.sig signer.pem`,
    );
    const pkg = await verifyPackage(path, { trust: rootTrust });
    assert.equal(pkg.signer.algorithm, 'ecdsa-p521-sha512');
  });

  test('refuses to pin a root with an RSA-1024 key, naming the file', async () => {
    const weakRoot = await opensslRoot(dir(), 'weak-root', { keyType: 'rsa-1024' });
    await assert.rejects(TrustStore.load(weakRoot.cert), (e: unknown) => {
      assert.ok(e instanceof TrustStoreError);
      assert.equal(e.code, 'TRUST_STORE_INVALID');
      assert.match(e.message, /weak-root\.crt.*1024 bits/);
      return true;
    });
  });

  test('refuses to pin a root self-signed with SHA-1, naming the file', async () => {
    const sha1Root = await opensslRoot(dir(), 'sha1-root', { md: 'sha1' });
    await assert.rejects(TrustStore.load(sha1Root.cert), /sha1-root\.crt.*sha1WithRSAEncryption/);
  });

  test('refuses a chain through an intermediate on the deny list, naming the entry', async () => {
    const folder = join(dir(), 'deny-trust');
    const fingerprint = (
      await sh(dir(), `openssl x509 -in '${intermediate.cert}' -noout -fingerprint -sha256`)
    ).trim();
    await sh(
      dir(),
      `mkdir -p '${folder}' && cp '${root.cert}' '${folder}/root.crt'
      printf '# compromised 2026-11\n%s  int-ca incident 42\n' '${fingerprint}' > '${folder}/revoked.deny'`,
    );
    const err = await rejects(
      await chainZip(leaf.key, [leaf.cert, intermediate.cert]),
      'CERT_CHAIN_INVALID',
      { trust: await TrustStore.load(folder) },
    );
    assert.match(err.message, /deny list \(revoked\.deny line 2 \(int-ca incident 42\)\)/);
  });

  test('refuses a signer key on the deny list, by the SHA-256 of its public key', async () => {
    const folder = join(dir(), 'deny-key');
    await sh(
      dir(),
      `mkdir -p '${folder}' && cp '${rsa.pub}' '${folder}/deploy.pub'
      openssl pkey -pubin -in '${rsa.pub}' -outform DER | sha256sum | cut -d' ' -f1 > '${folder}/keys.deny'`,
    );
    const err = await rejects(await standardPackage(src, rsa.key, out()), 'KEY_UNTRUSTED', {
      trust: await TrustStore.load(folder),
    });
    assert.match(err.message, /deploy\.pub.*deny list \(keys\.deny line 1\)/);
  });

  test('refuses a deny list holding anything but fingerprints', async () => {
    const folder = join(dir(), 'deny-typo');
    await sh(
      dir(),
      `mkdir -p '${folder}' && cp '${rsa.pub}' '${folder}/deploy.pub' && echo 'abc123' > '${folder}/x.deny'`,
    );
    await assert.rejects(TrustStore.load(folder), /x\.deny line 1/);
  });

  test('refuses with VERIFY_TIMEOUT when the trust stage outlasts its budget', async () => {
    let t = 0;
    const err = await rejects(await chainZip(leaf.key, [leaf.cert, intermediate.cert]), 'VERIFY_TIMEOUT', {
      trust: rootTrust,
      // Each look at the clock finds a second gone.
      clock: () => (t += 1000),
      trustBudgetMs: 2000,
    });
    assert.match(err.message, /2000 ms/);
  });

  test('hotocr pack refuses, before writing anything, a chain verify would refuse', async () => {
    const tls = await opensslIssue(dir(), 'pack-tls-leaf', intermediate, {
      ext: [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
      ],
    });
    const weak = await opensslIssue(dir(), 'pack-weak-int', root, { ext: CA_EXT, keyType: 'rsa-1024' });
    const belowWeak = await opensslIssue(dir(), 'pack-below-weak', weak, { ext: LEAF_EXT });
    for (const [signer, chain, why] of [
      [tls, [tls.cert, intermediate.cert], /codeSigning/],
      [belowWeak, [belowWeak.cert, weak.cert], /1024 bits/],
      [leaf, [intermediate.cert, leaf.cert], /issuer|signed/],
      [leaf, [leaf.cert, root.cert, intermediate.cert], /issuer|signed/],
    ] as const) {
      const target = join(dir(), 'never-written.zip');
      const pem = Buffer.concat(await Promise.all(chain.map((c) => readFile(c))));
      await assert.rejects(packWith(src, signer.key, target, pem), (e: unknown) => {
        assert.ok(e instanceof HotocrError);
        assert.equal(e.code, 'CERT_INVALID');
        assert.match(e.message, why);
        return true;
      });
      assert.deepEqual(
        (await readdir(dir())).filter((f) => f.includes('never-written')),
        [],
        'nothing is written',
      );
    }
  });

  test('stops when its signal fires, with the reason given, leaving nothing behind', async () => {
    const controller = new AbortController();
    const reason = new Error('stopping');
    controller.abort(reason);
    await assert.rejects(
      verifyPackage(await packWith(src, rsa.key, out()), { trust, signal: controller.signal }),
      (e) => e === reason,
    );
    assert.deepEqual(tmp.leftovers(), []);
  });
});

describe('tampered and badly signed packages', () => {
  test('refuses a package with one byte flipped in a graph', async () => {
    const path = await standardPackage(await freshSource(), rsa.key, out(), {
      afterSign: `printf '\\x00\\x01' | dd of=det.onnx bs=1 seek=100 conv=notrunc status=none`,
    });
    const err = await rejects(path, 'CHECKSUM_MISMATCH');
    assert.equal(err.details.entry, 'det.onnx');
  });

  test('refuses a graph changed with its checksum regenerated but not re-signed', async () => {
    const path = await standardPackage(await freshSource(), rsa.key, out(), {
      afterSign:
        'head -c 5000 /dev/urandom > rec.onnx && sha256sum config.json det.onnx rec.onnx cls.onnx keys.txt > checksum.sha256',
    });
    const err = await rejects(path, 'SIGNATURE_INVALID');
    assert.match(err.message, /changed after signing/);
  });

  test('refuses config.json edited after signing', async () => {
    const path = await standardPackage(await freshSource(), rsa.key, out(), {
      afterSign: "sed -i 's/2.1.0/9.9.9/' config.json",
    });
    const err = await rejects(path, 'CHECKSUM_MISMATCH');
    assert.equal(err.details.entry, 'config.json');
    // Read first when the entries to keep depend on it: refused before any is chosen.
    let asked = 0;
    const early = await rejects(path, 'CHECKSUM_MISMATCH', {
      keepBytes: () => {
        asked++;
        return true;
      },
    });
    assert.equal(early.details.entry, 'config.json');
    assert.equal(asked, 0);
  });

  test('refuses an RSA PKCS#1 v1.5 signature', async () => {
    const err = await rejects(
      await standardPackage(src, rsa.key, out(), { sigopts: [] }),
      'SIGNATURE_INVALID',
    );
    assert.match(err.message, /PKCS#1 v1\.5/);
  });

  test('refuses an empty signature.sig', async () => {
    await rejects(
      await standardPackage(await freshSource(), rsa.key, out(), { afterSign: ': > signature.sig' }),
      'SIGNATURE_INVALID',
    );
  });

  test('refuses a truncated signature.sig', async () => {
    const err = await rejects(
      await standardPackage(await freshSource(), rsa.key, out(), {
        afterSign: 'head -c 100 signature.sig > s && mv s signature.sig',
      }),
      'SIGNATURE_INVALID',
    );
    assert.match(err.message, /truncated/);
  });

  test('refuses a package without signature.sig', async () => {
    await rejects(
      await standardPackage(await freshSource(), rsa.key, out(), { afterSign: 'rm signature.sig' }),
      'SIGNATURE_MISSING',
    );
  });

  test('refuses a package signed by a key that is not in the trust store', async () => {
    const other = await opensslKey(work, 'stranger', 'rsa');
    const err = await rejects(await standardPackage(src, other.key, out()), 'KEY_UNTRUSTED');
    assert.match(err.message, /not trust/);
  });

  test('refuses a package without checksum.sha256', async () => {
    const path = out();
    await sh(src, `zip -q -Z store '${path}' config.json det.onnx rec.onnx cls.onnx keys.txt`);
    await rejects(path, 'CHECKSUM_MISSING');
  });

  test('refuses an extra file the checksum list does not name', async () => {
    const dir = await freshSource();
    await writeFile(join(dir, 'extra.txt'), 'surprise');
    const err = await rejects(
      await standardPackage(dir, rsa.key, out(), {
        zipped: ['config.json', 'det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt', 'extra.txt'],
      }),
      'CHECKSUM_UNLISTED_ENTRY',
    );
    assert.equal(err.details.entry, 'extra.txt');
  });

  test('refuses a listed file that is missing from the archive', async () => {
    const err = await rejects(
      await standardPackage(src, rsa.key, out(), {
        zipped: ['config.json', 'det.onnx', 'rec.onnx', 'cls.onnx'],
      }),
      'CHECKSUM_MISSING_ENTRY',
    );
    assert.equal(err.details.entry, 'keys.txt');
  });

  test('refuses a malformed checksum line', async () => {
    const err = await rejects(
      await standardPackage(await freshSource(), rsa.key, out(), {
        afterSign: "echo 'not a checksum line' >> checksum.sha256",
      }),
      'CHECKSUM_INVALID',
    );
    assert.match(err.message, /line 6/);
  });

  test('refuses a checksum list naming a file twice', async () => {
    await rejects(
      await standardPackage(await freshSource(), rsa.key, out(), {
        afterSign: 'head -n 1 checksum.sha256 >> checksum.sha256',
      }),
      'CHECKSUM_INVALID',
    );
  });
});

describe('manifests', () => {
  async function withConfig(config: string | Record<string, unknown>): Promise<string> {
    const dir = await freshSource();
    await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return standardPackage(dir, rsa.key, out());
  }

  test('refuses config.json that is not JSON', async () => {
    await rejects(await withConfig('{"format": "hotocr/v1",'), 'CONFIG_INVALID');
  });

  test('refuses config.json with an unknown key', async () => {
    const err = await rejects(await withConfig(manifest({ threshold: 0.5 })), 'CONFIG_INVALID');
    assert.match(err.message, /threshold/);
  });

  test('refuses config.json without a required field', async () => {
    const config = manifest();
    delete config.version;
    const err = await rejects(await withConfig(config), 'CONFIG_INVALID');
    assert.match(err.message, /version/);
  });

  test('refuses a version that is not semver', async () => {
    const err = await rejects(await withConfig(manifest({ version: 'v2.1' })), 'CONFIG_INVALID');
    assert.match(err.message, /semantic version/);
  });

  test('refuses a manifest naming a graph the package lacks', async () => {
    const err = await rejects(
      await withConfig(manifest({ graphs: { det: 'det.onnx', rec: 'missing.onnx' } })),
      'CONFIG_INVALID',
    );
    assert.match(err.message, /missing\.onnx/);
  });

  test('refuses a package whose expires is in the past', async () => {
    await rejects(await withConfig(manifest({ expires: '2020-01-01T00:00:00Z' })), 'PACKAGE_EXPIRED');
  });

  test('refuses a downgrade unless the operator allows it', async () => {
    const path = await packWith(src, rsa.key, out());
    await rejects(path, 'VERSION_DOWNGRADE', { highestActivated: '3.0.0' });
    const pkg = await verifyPackage(path, { trust, highestActivated: '3.0.0', allowDowngrade: true });
    assert.equal(pkg.manifest.version, '2.1.0');
  });
});

describe('legacy seed-style packages', () => {
  let legacy: string;
  before(async () => {
    const dir = join(work, 'legacy');
    await sh(work, `mkdir -p ${dir}`);
    await writeFile(join(dir, 'model.onnx'), randomBytes(2048));
    await writeFile(join(dir, 'keys.txt'), 'a\nb\n');
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify(manifest({ task: 'rec', graphs: { rec: 'model.onnx' }, version: '1.0.0' })),
    );
    legacy = join(work, 'legacy.zip');
    await sh(
      dir,
      `sha256sum model.onnx > checksum.sha256
      openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sign '${rsa.key}' -out signature.sig model.onnx
      zip -q -Z store '${legacy}' model.onnx config.json keys.txt checksum.sha256 signature.sig`,
    );
  });

  test('refuses a seed-style package by default', async () => {
    const err = await rejects(legacy, 'LEGACY_SIGNATURE_REFUSED');
    assert.match(err.message, /--allow-legacy-signatures/);
  });

  test('accepts it with the opt-in and names what the signature leaves unprotected', async () => {
    const pkg = await verifyPackage(legacy, { trust, allowLegacySignatures: true });
    assert.deepEqual(pkg.legacy?.unprotected, ['config.json', 'keys.txt']);
    assert.equal(pkg.manifest.task, 'rec');
    assert.equal(pkg.signer.algorithm, 'rsa-pss-sha256');
  });

  test('keeps, under the opt-in, the very bytes of model.onnx that verified', async () => {
    const pkg = await verifyPackage(legacy, { trust, allowLegacySignatures: true, keepBytes: true });
    assert.ok(pkg.files.get('model.onnx')?.equals(await readFile(join(work, 'legacy', 'model.onnx'))));
    assert.ok(pkg.files.has('config.json'));
  });

  test('refuses the shape alone without the opt-in: model.onnx is never inflated', async () => {
    // A corrupt deflate stream: reading model.onnx would fail with ARCHIVE_INVALID.
    const model = randomBytes(64 * 1024);
    const listed = `${createHash('sha256').update(model).digest('hex')}  model.onnx\n`;
    const zip = makeZip([
      { name: 'model.onnx', data: model, method: 8 },
      { name: 'config.json', data: Buffer.from('{}') },
      { name: 'checksum.sha256', data: Buffer.from(listed) },
      { name: 'signature.sig', data: randomBytes(256) },
    ]);
    const at = zip.indexOf(Buffer.from('model.onnx')) + 'model.onnx'.length;
    zip.fill(0xff, at + 10, at + 2000);
    const path = out();
    await writeFile(path, zip);
    const err = await rejects(path, 'LEGACY_SIGNATURE_REFUSED');
    assert.match(err.message, /lists model\.onnx alone/);
  });

  test('refuses, under the opt-in, a seed-style signature no trusted key made', async () => {
    const other = await opensslKey(work, 'legacy-other', 'rsa');
    const path = out();
    await sh(
      join(work, 'legacy'),
      `openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sign '${other.key}' -out other.sig model.onnx
      cp other.sig signature.sig
      zip -q -Z store '${path}' model.onnx config.json keys.txt checksum.sha256 signature.sig
      rm other.sig signature.sig`,
    );
    await rejects(path, 'KEY_UNTRUSTED', { allowLegacySignatures: true });
  });

  test("refuses, under the opt-in, a key past its trust store's Not-After", async () => {
    const expired = TrustStore.fromPem([
      { source: 'deploy.pub', text: `Not-After: 2020-01-01T00:00:00Z\n${await readFile(rsa.pub, 'utf8')}` },
    ]);
    const err = await rejects(legacy, 'KEY_UNTRUSTED', { trust: expired, allowLegacySignatures: true });
    assert.match(err.message, /2020-01-01/);
  });
});

describe('hostile archives', () => {
  async function zipFile(entries: RawEntry[] | Buffer): Promise<string> {
    const path = out();
    await writeFile(path, Array.isArray(entries) ? makeZip(entries) : entries);
    return path;
  }
  const file = (name: string, data = 'x'): RawEntry => ({ name, data: Buffer.from(data) });

  for (const [name, why] of [
    ['../x', /climbs out/],
    ['/x', /absolute/],
    ['a\\b', /backslash/],
    ['dir/x', /folder/],
    ['C:x', /absolute/],
  ] as const) {
    test(`refuses an entry named ${JSON.stringify(name)}`, async () => {
      const err = await rejects(await zipFile([file('config.json'), file(name)]), 'PATH_UNSAFE');
      assert.match(err.message, why);
    });
  }

  test('refuses a name starting with a UTF-8 byte-order mark, which a decoder would strip', async () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('config.json')]);
    const err = await rejects(
      await zipFile([{ name: bom, data: Buffer.from('{}'), flags: 0x800 }]),
      'PATH_UNSAFE',
    );
    assert.match(err.message, /outside \[A-Za-z0-9._-\]/);
  });

  test('refuses a Unicode Path field naming another file than the header (central directory)', async () => {
    const err = await rejects(
      await zipFile([{ ...file('config.json'), extra: unicodePathField('config.json', 'evil.json') }]),
      'PATH_UNSAFE',
    );
    assert.match(err.message, /Unicode Path.*evil\.json/);
  });

  test('refuses a Unicode Path field naming another file than the header (local header)', async () => {
    const err = await rejects(
      await zipFile([{ ...file('config.json'), localExtra: unicodePathField('config.json', 'evil.json') }]),
      'PATH_UNSAFE',
    );
    assert.match(err.message, /local header/);
  });

  test('takes a Unicode Path field that names the header name itself', async () => {
    // Refused later, for what it lacks, not for its names.
    const same = unicodePathField('config.json', 'config.json');
    await rejects(
      await zipFile([{ ...file('config.json'), extra: same, localExtra: same }]),
      'CHECKSUM_MISSING',
    );
  });

  test('refuses a folder entry', async () => {
    await rejects(await zipFile([file('models/', '')]), 'PATH_UNSAFE');
  });

  test('refuses a symlink entry', async () => {
    const err = await rejects(
      await zipFile([{ name: 'det.onnx', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 }]),
      'PATH_UNSAFE',
    );
    assert.match(err.message, /symbolic link/);
  });

  test('refuses duplicate names', async () => {
    await rejects(await zipFile([file('model.onnx'), file('model.onnx')]), 'ENTRY_DUPLICATE');
  });

  test('refuses names that differ only by case', async () => {
    const err = await rejects(await zipFile([file('model.onnx'), file('Model.onnx')]), 'ENTRY_DUPLICATE');
    assert.match(err.message, /case/);
  });

  test('refuses a local header whose name differs from the central directory', async () => {
    const err = await rejects(
      await zipFile([{ ...file('config.json'), localName: 'evil.json' }]),
      'ARCHIVE_INVALID',
    );
    assert.match(err.message, /local header/);
  });

  test('refuses entries whose bytes overlap', async () => {
    const err = await rejects(await zipFile(makeOverlappingZip()), 'ARCHIVE_INVALID');
    assert.match(err.message, /overlap/);
  });

  test('refuses an encrypted entry', async () => {
    await rejects(await zipFile([{ ...file('config.json'), flags: 1 }]), 'ARCHIVE_INVALID');
  });

  test('refuses a zip bomb by its compression ratio before inflating it', async () => {
    const zeros = Buffer.alloc(20 * 1024 * 1024);
    const path = await zipFile([{ name: 'det.onnx', data: zeros, method: 8 }]);
    assert.ok((await readFile(path)).length < 100_000);
    const err = await rejects(path, 'ARCHIVE_TOO_LARGE');
    assert.match(err.message, /zip bomb/);
  });

  test('refuses an entry that inflates past its declared size', async () => {
    const path = await standardPackage(src, rsa.key, out());
    const bomb = makeZip([
      { name: 'checksum.sha256', data: Buffer.alloc(200_000), method: 8, declaredSize: 100 },
    ]);
    await writeFile(path, bomb);
    await rejects(path, 'ARCHIVE_INVALID');
    assert.ok(deflateRawSync(Buffer.alloc(10)).length > 0);
  });

  test('refuses an archive over the size limit without reading it', async () => {
    const path = await packWith(src, rsa.key, out());
    await rejects(path, 'ARCHIVE_TOO_LARGE', {
      limits: {
        maxArchiveBytes: 1000,
        maxEntries: 64,
        maxTotalUncompressedBytes: 1e9,
        maxCompressionRatio: 100,
        ratioExemptBytes: 1e6,
        maxSmallEntryBytes: 1e6,
      },
    });
  });

  test('refuses an archive with too many entries', async () => {
    const entries = Array.from({ length: 70 }, (_, i) => file(`f${i}.txt`));
    await rejects(await zipFile(entries), 'ARCHIVE_TOO_LARGE');
  });

  test('refuses an empty file', async () => {
    await rejects(await zipFile(Buffer.alloc(0)), 'ARCHIVE_INVALID');
  });

  test('refuses a text file renamed .zip', async () => {
    await rejects(await zipFile(Buffer.from('this is not a zip archive\n'.repeat(20))), 'ARCHIVE_INVALID');
  });

  test('refuses a truncated archive', async () => {
    const whole = await readFile(await packWith(src, rsa.key, out()));
    for (const keep of [0.5, 0.9, 0.999]) {
      await rejects(await zipFile(whole.subarray(0, Math.floor(whole.length * keep))), 'ARCHIVE_INVALID');
    }
  });

  test('leaves no file behind when a package vanishes mid-way', async () => {
    const path = await packWith(src, rsa.key, out());
    await rm(path);
    await assert.rejects(verifyPackage(path, { trust }), (e: unknown) => {
      assert.ok(e instanceof PackageRejectedError);
      assert.equal(e.code, 'ARCHIVE_INVALID');
      assert.match(e.message, /gone/);
      assert.equal(e.details.errno, 'ENOENT');
      return true;
    });
    assert.deepEqual(tmp.leftovers(), []);
  });
});
