import { PackageRejectedError } from '../errors.js';
import { OMS_SIGNATURE_FILE } from '../package/index.js';

export { OMS_SIGNATURE_FILE };

/** The only bundle media type an OMS v1.0 signature is written in. */
export const OMS_BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** The DSSE payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/**
 * The most bytes `model.sig` may have. A statement lists one name and digest (about 120
 * bytes) per file, so this leaves room for about 100 000 files.
 */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

/** How the bundle says it can be verified: which of the three OMS flavours it is. */
export type OmsMaterial =
  | {
      readonly kind: 'key';
      /** SHA-256 (hex) of the signing key's PEM SubjectPublicKeyInfo, when the signer wrote it. */
      readonly hint?: string;
      /** The key the signer embedded (older signers), never trusted for itself. */
      readonly embedded?: Buffer;
    }
  | { readonly kind: 'certificate'; readonly chain: readonly Buffer[] }
  | { readonly kind: 'keyless'; readonly certificate: Buffer };

/** A Sigstore bundle read from `model.sig`, before any of it is trusted. */
export interface OmsBundle {
  /** The parsed JSON, for the Sigstore libraries. */
  readonly json: Record<string, unknown>;
  readonly material: OmsMaterial;
  readonly payloadType: string;
  /** The DSSE payload: the in-toto statement, exactly as signed. */
  readonly payload: Buffer;
  /** The one DSSE signature. */
  readonly signature: Buffer;
  /** How many transparency-log entries the bundle carries. */
  readonly tlogEntries: number;
}

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new PackageRejectedError('OMS_BUNDLE_INVALID', message, { details });
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Protobuf JSON's bytes: standard or URL-safe base64, padding optional. */
function bytesOf(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value) || value.length % 4 === 1)
    invalid(`model.sig: ${what} is not base64.`);
  const bytes = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length === 0) invalid(`model.sig: ${what} is empty.`);
  return bytes;
}

/**
 * Reads `model.sig` as the reference writes it: a Sigstore bundle of media type
 * {@link OMS_BUNDLE_MEDIA_TYPE} whose verification material is a public key (hint), an X.509
 * chain, or one certificate with transparency-log entries (keyless), and whose content is a
 * DSSE envelope with one signature over an in-toto payload. Anything else, a truncated or
 * oversized file included, is refused with OMS_BUNDLE_INVALID. Nothing here is trusted yet.
 */
export function parseOmsBundle(bytes: Buffer): OmsBundle {
  if (bytes.length > MAX_BUNDLE_BYTES)
    invalid(`model.sig is ${bytes.length} bytes, over the limit of ${MAX_BUNDLE_BYTES}.`, {
      size: bytes.length,
      limit: MAX_BUNDLE_BYTES,
    });
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    invalid(
      bytes.length === 0
        ? 'model.sig is empty.'
        : 'model.sig is not JSON: it is truncated or damaged (a Sigstore bundle is a JSON document).',
    );
  }
  if (!isObject(json)) invalid('model.sig is not a Sigstore bundle (a JSON object).');
  if (json.mediaType !== OMS_BUNDLE_MEDIA_TYPE)
    invalid(
      `model.sig has media type ${JSON.stringify(json.mediaType)}; an OMS signature is a ${OMS_BUNDLE_MEDIA_TYPE} Sigstore bundle.`,
      { mediaType: json.mediaType },
    );
  const vm = json.verificationMaterial;
  if (!isObject(vm)) invalid('model.sig has no verificationMaterial.');
  const kinds = ['publicKey', 'x509CertificateChain', 'certificate'].filter((k) => vm[k] !== undefined);
  if (kinds.length !== 1)
    invalid(
      'model.sig must hold exactly one of publicKey, x509CertificateChain or certificate in its verificationMaterial.',
      { found: kinds },
    );
  const tlog = vm.tlogEntries ?? [];
  if (!Array.isArray(tlog)) invalid('model.sig: verificationMaterial.tlogEntries is not a list.');
  const material = materialOf(kinds[0]!, vm[kinds[0]!]);
  if (material.kind === 'keyless' && tlog.length === 0)
    invalid(
      'model.sig holds a certificate but no transparency-log entry: a keyless (Sigstore) signature is verified through its log entry.',
    );

  if (json.messageSignature !== undefined)
    invalid('model.sig signs a message digest; an OMS signature is a DSSE envelope.');
  const envelope = json.dsseEnvelope;
  if (!isObject(envelope)) invalid('model.sig has no dsseEnvelope.');
  if (typeof envelope.payloadType !== 'string') invalid('model.sig: dsseEnvelope.payloadType is missing.');
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    invalid(
      `model.sig's envelope carries ${JSON.stringify(envelope.payloadType)}; an OMS signature carries ${IN_TOTO_PAYLOAD_TYPE}.`,
    );
  const payload = bytesOf(envelope.payload, 'dsseEnvelope.payload');
  const signatures = envelope.signatures;
  if (!Array.isArray(signatures) || signatures.length !== 1 || !isObject(signatures[0]))
    invalid('model.sig: the DSSE envelope must hold exactly one signature.');
  const signature = bytesOf(signatures[0].sig, 'the DSSE signature');
  return {
    json,
    material,
    payloadType: envelope.payloadType,
    payload,
    signature,
    tlogEntries: tlog.length,
  };
}

function materialOf(kind: string, value: unknown): OmsMaterial {
  if (!isObject(value)) invalid(`model.sig: verificationMaterial.${kind} is not an object.`);
  switch (kind) {
    case 'publicKey': {
      const hint = value.hint;
      if (hint !== undefined && hint !== null && typeof hint !== 'string')
        invalid('model.sig: verificationMaterial.publicKey.hint is not a string.');
      return {
        kind: 'key',
        ...(typeof hint === 'string' && hint !== '' ? { hint } : {}),
        ...(value.rawBytes !== undefined
          ? { embedded: bytesOf(value.rawBytes, 'verificationMaterial.publicKey.rawBytes') }
          : {}),
      };
    }
    case 'x509CertificateChain': {
      const certificates = value.certificates;
      if (!Array.isArray(certificates) || certificates.length === 0)
        invalid('model.sig: verificationMaterial.x509CertificateChain holds no certificate.');
      // Bounded before anything is parsed; the chain rules allow fewer still.
      if (certificates.length > 16)
        invalid(`model.sig: x509CertificateChain holds ${certificates.length} certificates.`);
      return {
        kind: 'certificate',
        chain: certificates.map((c, i) =>
          bytesOf(isObject(c) ? c.rawBytes : undefined, `certificate ${i + 1} of x509CertificateChain`),
        ),
      };
    }
    default:
      return { kind: 'keyless', certificate: bytesOf(value.rawBytes, 'verificationMaterial.certificate') };
  }
}
