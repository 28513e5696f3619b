import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FIXTURES } from '../../test/helpers/oms.js';
import { PackageRejectedError } from '../errors.js';
import { MAX_BUNDLE_BYTES, parseOmsBundle } from './oms-bundle.js';

const fixture = (folder: string) => readFileSync(join(FIXTURES, folder, 'model.sig'));

function refused(bytes: Buffer | string, pattern: RegExp): void {
  assert.throws(
    () => parseOmsBundle(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes)),
    (error: unknown) => {
      assert.ok(error instanceof PackageRejectedError, String(error));
      assert.equal(error.code, 'OMS_BUNDLE_INVALID');
      assert.match(error.message, pattern);
      return true;
    },
  );
}

/** The parts of a bundle the tests edit. */
interface BundleJson {
  mediaType?: string;
  messageSignature?: unknown;
  verificationMaterial: Record<string, unknown> & { tlogEntries?: unknown[] };
  dsseEnvelope?: { payload: string; payloadType: string; signatures: { sig: string }[] };
}

/** A fixture's bundle as JSON, edited. */
function edited(folder: string, edit: (bundle: BundleJson) => void): string {
  const bundle = JSON.parse(fixture(folder).toString('utf8'));
  edit(bundle);
  return JSON.stringify(bundle);
}

describe('model.sig as the reference writes it', () => {
  test('tells the three flavours apart by their verification material', () => {
    assert.equal(parseOmsBundle(fixture('v1.0.1-elliptic-key')).material.kind, 'key');
    assert.equal(parseOmsBundle(fixture('v1.0.1-certificate')).material.kind, 'certificate');
    assert.equal(parseOmsBundle(fixture('v1.0.1-sigstore')).material.kind, 'keyless');
  });

  test('keeps the key an older signer embedded, the chain, and the in-toto payload as signed', () => {
    const key = parseOmsBundle(fixture('v1.0.0-elliptic-key'));
    assert.ok(
      key.material.kind === 'key' && key.material.embedded?.toString().startsWith('-----BEGIN PUBLIC KEY'),
    );
    const chain = parseOmsBundle(fixture('v1.0.0-certificate'));
    assert.equal(chain.material.kind === 'certificate' && chain.material.chain.length, 2);
    assert.equal(chain.payloadType, 'application/vnd.in-toto+json');
    assert.match(chain.payload.toString(), /"predicateType": "https:\/\/model_signing\/signature\/v1.0"/);
  });
});

describe('model.sig refused', () => {
  test('truncated anywhere', () => {
    const whole = fixture('v1.0.1-sigstore');
    for (const at of [0, 1, 100, Math.floor(whole.length / 2), whole.length - 2]) {
      refused(whole.subarray(0, at), /empty|truncated/);
    }
  });

  test('of another media type, including older Sigstore bundles', () => {
    for (const mediaType of [
      'application/vnd.dev.sigstore.bundle.v0.2+json',
      'application/vnd.dev.sigstore.bundle+json;version=0.1',
      undefined,
    ])
      refused(
        edited('v1.0.1-elliptic-key', (b) => {
          b.mediaType = mediaType;
        }),
        /media type/,
      );
  });

  test('with two verification materials, or none', () => {
    refused(
      edited('v1.0.1-certificate', (b) => {
        b.verificationMaterial.publicKey = { hint: 'ab' };
      }),
      /exactly one/,
    );
    refused(
      edited('v1.0.1-certificate', (b) => {
        delete b.verificationMaterial.x509CertificateChain;
      }),
      /exactly one/,
    );
  });

  test('with no DSSE envelope, two signatures, or a payload that is not in-toto', () => {
    refused(
      edited('v1.0.1-elliptic-key', (b) => {
        b.messageSignature = { signature: 'AA==' };
        delete b.dsseEnvelope;
      }),
      /message digest|dsseEnvelope/,
    );
    refused(
      edited('v1.0.1-elliptic-key', (b) => {
        b.dsseEnvelope!.signatures.push(b.dsseEnvelope!.signatures[0]!);
      }),
      /exactly one signature/,
    );
    refused(
      edited('v1.0.1-elliptic-key', (b) => {
        b.dsseEnvelope!.payloadType = 'application/json';
      }),
      /in-toto/,
    );
  });

  test('a keyless certificate without its transparency-log entry', () => {
    refused(
      edited('v1.0.1-sigstore', (b) => {
        b.verificationMaterial.tlogEntries = [];
      }),
      /transparency-log entry/,
    );
  });

  test('bytes that are not base64, and an empty signature', () => {
    refused(
      edited('v1.0.1-elliptic-key', (b) => {
        b.dsseEnvelope!.payload = 'not base64!';
      }),
      /base64/,
    );
    refused(
      edited('v1.0.1-elliptic-key', (b) => {
        b.dsseEnvelope!.signatures[0]!.sig = '';
      }),
      /empty/,
    );
  });

  test(`over ${MAX_BUNDLE_BYTES} bytes, before it is parsed`, () => {
    refused(Buffer.alloc(MAX_BUNDLE_BYTES + 1, 0x20), /over the limit/);
  });
});
