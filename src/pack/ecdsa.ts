import { PackError } from '../errors.js';

/** One DER INTEGER holding an unsigned big-endian number. */
function derInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let value = bytes.subarray(i);
  if (value[0]! & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
  return Buffer.concat([Buffer.from([0x02, value.length]), value]);
}

/**
 * Turns an ECDSA signature as PKCS#11 tokens and cloud KMSs return it (r and s, each the
 * curve's size, concatenated) into the DER SEQUENCE that openssl writes and hotocr expects.
 */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132)
    throw new PackError(
      'SIGNATURE_FORMAT_INVALID',
      `A raw ECDSA signature of ${raw.length} bytes is not r||s.`,
    );
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  const length = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]);
  return Buffer.concat([Buffer.from([0x30]), length, body]);
}
