import { createHash, verify } from 'node:crypto';
import { dsse } from '@sigstore/core';
import { PackError } from '../errors.js';
import { type OmsAlgorithm, omsAlgorithmOf, omsKeyHint } from '../verify/index.js';
import type { PackageSigner } from './signer.js';

/** What OpenSSF Model Signing v1.0 writes, as the reference's `model_signing sign key` writes it. */
const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
const PREDICATE_TYPE = 'https://model_signing/signature/v1.0';
/**
 * What the reference leaves out of a folder it signs by default, and records in the statement:
 * its signature and the git paths. Sorted, so that two packs of the same files agree.
 */
export const OMS_IGNORE_PATHS: readonly string[] = [
  '.git',
  '.gitattributes',
  '.github',
  '.gitignore',
  'model.sig',
];

/** One file of the model, hashed. */
export interface OmsResource {
  readonly name: string;
  readonly sha256: string;
}

/**
 * The scheme an OMS key signature is made with for this signer's key, or a refusal saying
 * why: the reference signs with EC keys alone, the digest fixed by the curve.
 */
export function omsSchemeOf(signer: PackageSigner): OmsAlgorithm {
  const scheme = omsAlgorithmOf(signer.publicKey);
  if (scheme) return scheme.algorithm;
  const key = signer.publicKey;
  const what =
    key.asymmetricKeyType === 'ec'
      ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve ?? 'an unnamed curve'}`
      : `an ${key.asymmetricKeyType?.toUpperCase()} key`;
  throw new PackError(
    'KEY_INVALID',
    `--format oms signs as the reference's "model_signing sign key" does, with ECDSA on P-256, P-384 or P-521 (the digest fixed by the curve), and its verifiers accept nothing else; this is ${what}. Sign with an EC key, or pack a hotocr package (without --format oms).`,
  );
}

/**
 * The in-toto statement of a flat model: every file with its SHA-256, in the order the
 * reference lists them (by path), and as subject the model's name and the SHA-256 of those
 * digests taken in that order.
 */
export function omsStatement(
  name: string,
  resources: readonly OmsResource[],
): { readonly bytes: Buffer; readonly digest: string } {
  const sorted = [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const root = createHash('sha256');
  for (const r of sorted) root.update(Buffer.from(r.sha256, 'hex'));
  const digest = root.digest('hex');
  const statement = {
    _type: STATEMENT_TYPE,
    subject: [{ name, digest: { sha256: digest } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      serialization: {
        method: 'files',
        hash_type: 'sha256',
        allow_symlinks: false,
        ignore_paths: OMS_IGNORE_PATHS,
      },
      resources: sorted.map((r) => ({ algorithm: 'sha256', digest: r.sha256, name: r.name })),
    },
  };
  return { bytes: Buffer.from(JSON.stringify(statement, null, 2)), digest };
}

/**
 * Signs a statement as the reference's key method does: ECDSA over the DSSE pre-authentication
 * encoding with the curve's digest, in a Sigstore v0.3 bundle whose verification material is
 * the key's hint (SHA-256 of its PEM); or, given `chain` (DER, the signer's certificate
 * first), as its certificate method does, the chain as the verification material. A
 * signature that does not verify with the signer's public key under that scheme (an
 * external command that hashed otherwise) is refused here.
 */
export async function omsBundle(
  statement: Buffer,
  signer: PackageSigner,
  chain?: readonly Buffer[],
): Promise<Buffer> {
  const scheme = omsSchemeOf(signer);
  const pae = dsse.preAuthEncoding(PAYLOAD_TYPE, statement);
  const signature = await signer.sign(pae, scheme);
  const digest = omsAlgorithmOf(signer.publicKey)!.digest;
  let ok = false;
  try {
    ok = verify(digest, pae, { key: signer.publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new PackError(
      'PACK_SELF_CHECK_FAILED',
      `The signature does not verify over the envelope with the signing key as ${scheme} (ECDSA with ${digest.toUpperCase()}): an OMS signature by this key hashes with ${digest.toUpperCase()}${digest === 'sha256' ? '' : ` (e.g. openssl dgst -${digest} -sign)`}, and with this very key.`,
    );
  const bundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: chain
      ? { x509CertificateChain: { certificates: chain.map((der) => ({ rawBytes: der.toString('base64') })) } }
      : { publicKey: { hint: omsKeyHint(signer.publicKey) }, tlogEntries: [] },
    dsseEnvelope: {
      payload: statement.toString('base64'),
      payloadType: PAYLOAD_TYPE,
      signatures: [{ sig: signature.toString('base64') }],
    },
  };
  return Buffer.from(JSON.stringify(bundle));
}
