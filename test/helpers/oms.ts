/**
 * A minimal OpenSSF Model Signing (OMS v1.0) writer for tests and benchmarks: the statement,
 * DSSE envelope and Sigstore bundle laid out as the reference's `model_signing sign key` and
 * `sign certificate` write them. hotocr itself only verifies them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dsse } from '@sigstore/core';

export const FIXTURES = new URL('../../../test/fixtures/oms/', import.meta.url).pathname;

export interface Resource {
  readonly name: string;
  readonly digest: string;
  readonly algorithm?: string;
}

/** The in-toto statement for these resources, in the order given; `patch` edits the result. */
export function statementFor(
  name: string,
  resources: readonly Resource[],
  patch: (statement: Record<string, unknown>) => void = () => {},
): Record<string, unknown> {
  const root = createHash('sha256');
  for (const r of resources) root.update(Buffer.from(r.digest, 'hex'));
  const statement: Record<string, unknown> = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name, digest: { sha256: root.digest('hex') } }],
    predicateType: 'https://model_signing/signature/v1.0',
    predicate: {
      serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false },
      resources: resources.map((r) => ({
        algorithm: r.algorithm ?? 'sha256',
        digest: r.digest,
        name: r.name,
      })),
    },
  };
  patch(statement);
  return statement;
}

const DIGEST: Record<string, string> = { prime256v1: 'sha256', secp384r1: 'sha384', secp521r1: 'sha512' };

/** What the bundle carries to verify with: a key hint, the key itself (older signers), or a chain. */
export type Material =
  | { readonly kind: 'key'; readonly style?: 'hint' | 'rawBytes' | 'none' }
  | { readonly kind: 'certificate'; readonly chain: readonly string[] };

/** Signs a statement as the reference does (ECDSA over the DSSE PAE, digest by curve) and returns model.sig's text. */
export async function bundleFor(
  statement: Record<string, unknown> | Buffer,
  privateKey: KeyObject | string,
  material: Material = { kind: 'key' },
): Promise<string> {
  const key = typeof privateKey === 'string' ? createPrivateKey(await readFile(privateKey)) : privateKey;
  const payload = Buffer.isBuffer(statement) ? statement : Buffer.from(JSON.stringify(statement));
  const type = 'application/vnd.in-toto+json';
  const digest = DIGEST[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? 'sha256';
  const sig = sign(digest, dsse.preAuthEncoding(type, payload), { key, dsaEncoding: 'der' });
  const publicPem = createPublicPem(key);
  let verificationMaterial: Record<string, unknown>;
  if (material.kind === 'certificate') {
    const ders = await Promise.all(
      material.chain.map(async (p) => new X509Certificate(await readFile(p)).raw.toString('base64')),
    );
    verificationMaterial = { x509CertificateChain: { certificates: ders.map((rawBytes) => ({ rawBytes })) } };
  } else if (material.style === 'rawBytes') {
    verificationMaterial = { publicKey: { rawBytes: Buffer.from(publicPem).toString('base64') } };
  } else if (material.style === 'none') {
    verificationMaterial = { publicKey: {} };
  } else {
    verificationMaterial = {
      publicKey: { hint: createHash('sha256').update(publicPem).digest('hex') },
      tlogEntries: [],
    };
  }
  return JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial,
    dsseEnvelope: {
      payload: payload.toString('base64'),
      payloadType: type,
      signatures: [{ sig: sig.toString('base64') }],
    },
  });
}

function createPublicPem(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string;
}

/** Every regular file under `dir` but `model.sig`, model-relative, ordered as the reference orders them. */
export async function modelFiles(
  dir: string,
  skip: (name: string) => boolean = () => false,
): Promise<string[]> {
  const names: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(join(dir, folder), { withFileTypes: true })) {
      const name = folder ? `${folder}/${entry.name}` : entry.name;
      if (name === 'model.sig' || skip(name)) continue;
      if (entry.isDirectory()) await walk(name);
      else names.push(name);
    }
  };
  await walk('');
  // Python's PurePosixPath order: component by component.
  return names.sort((a, b) => {
    const x = a.split('/');
    const y = b.split('/');
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return x.length - y.length;
  });
}

/** Signs the folder `dir` in place, writing `dir/model.sig`, as `model_signing sign key|certificate DIR` would. */
export async function signFolder(
  dir: string,
  privateKey: KeyObject | string,
  material: Material = { kind: 'key' },
  skip: (name: string) => boolean = () => false,
): Promise<string> {
  const resources = await Promise.all(
    (await modelFiles(dir, skip)).map(async (name) => ({
      name,
      digest: createHash('sha256')
        .update(await readFile(join(dir, name)))
        .digest('hex'),
    })),
  );
  const text = await bundleFor(
    statementFor(dir.split('/').pop() ?? 'model', resources),
    privateKey,
    material,
  );
  await writeFile(join(dir, 'model.sig'), text);
  return text;
}

/** The statement of an OMS package, as `checkOmsPackage` read it. */
export interface CheckedStatement {
  readonly _type: string;
  readonly subject: readonly { name: string; digest: { sha256: string } }[];
  readonly predicateType: string;
  readonly predicate: {
    readonly serialization: Record<string, unknown> & { ignore_paths?: string[] };
    readonly resources: readonly { algorithm: string; digest: string; name: string }[];
  };
}

/**
 * Checks an OMS package by a path that shares nothing with hotocr's verifier: `unzip` unpacks
 * it, the DSSE pre-authentication encoding is built here by hand and checked with node:crypto
 * against `publicPem` (the digest fixed by the curve), and every file's SHA-256 and the
 * subject digest are computed again. With `chain` (DER), the bundle must carry that chain as
 * the certificate method writes it, and `publicPem` is its signer's key. Throws an assertion
 * error on the first difference.
 */
export async function checkOmsPackage(
  zip: string,
  publicPem: string,
  unpackTo: string,
  { chain }: { chain?: readonly Buffer[] } = {},
): Promise<{ statement: CheckedStatement; unpacked: string; bundle: Record<string, unknown> }> {
  await mkdir(unpackTo, { recursive: true });
  await promisify(execFile)('unzip', ['-q', '-o', zip, '-d', unpackTo]);

  const bundle = JSON.parse(await readFile(join(unpackTo, 'model.sig'), 'utf8'));
  assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  const key = createPublicKey(publicPem);
  const spkiPem = key.export({ type: 'spki', format: 'pem' }) as string;
  // The key method names the key by its hint; the certificate method carries the chain, signer first.
  assert.deepEqual(
    bundle.verificationMaterial,
    chain
      ? { x509CertificateChain: { certificates: chain.map((der) => ({ rawBytes: der.toString('base64') })) } }
      : { publicKey: { hint: createHash('sha256').update(spkiPem).digest('hex') }, tlogEntries: [] },
  );
  const envelope = bundle.dsseEnvelope;
  assert.equal(envelope.payloadType, 'application/vnd.in-toto+json');
  assert.equal(envelope.signatures.length, 1);
  const payload = Buffer.from(envelope.payload, 'base64');
  const pae = Buffer.concat([
    Buffer.from(
      `DSSEv1 ${Buffer.byteLength(envelope.payloadType)} ${envelope.payloadType} ${payload.length} `,
    ),
    payload,
  ]);
  const curveDigest = DIGEST[key.asymmetricKeyDetails?.namedCurve ?? ''];
  assert.ok(curveDigest, 'an EC key on P-256, P-384 or P-521');
  assert.ok(
    verify(curveDigest, pae, { key, dsaEncoding: 'der' }, Buffer.from(envelope.signatures[0].sig, 'base64')),
    `the DSSE signature verifies over the PAE with ${curveDigest}`,
  );

  const statement = JSON.parse(payload.toString('utf8')) as CheckedStatement;
  assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
  assert.equal(statement.predicateType, 'https://model_signing/signature/v1.0');
  assert.equal(statement.predicate.serialization.method, 'files');
  assert.equal(statement.predicate.serialization.hash_type, 'sha256');
  assert.equal(statement.predicate.serialization.allow_symlinks, false);
  const names = statement.predicate.resources.map((r) => r.name);
  assert.deepEqual(names, [...names].sort(), 'resources in path order');
  const unpacked = (await readdir(unpackTo)).filter((n) => n !== 'model.sig').sort();
  assert.deepEqual(names, unpacked, 'every file of the package is listed, and only those');
  const root = createHash('sha256');
  for (const resource of statement.predicate.resources) {
    assert.equal(resource.algorithm, 'sha256');
    const digest = createHash('sha256')
      .update(await readFile(join(unpackTo, resource.name)))
      .digest('hex');
    assert.equal(resource.digest, digest, `${resource.name}'s digest`);
    root.update(Buffer.from(digest, 'hex'));
  }
  assert.equal(statement.subject.length, 1);
  assert.equal(statement.subject[0]!.digest.sha256, root.digest('hex'), 'the subject digest');
  return { statement, unpacked: unpackTo, bundle };
}
