/**
 * A minimal OpenSSF Model Signing (OMS v1.0) writer for tests and benchmarks: the statement,
 * DSSE envelope and Sigstore bundle laid out as the reference's `model_signing sign key` and
 * `sign certificate` write them. hotocr itself only verifies them.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  X509Certificate,
} from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
