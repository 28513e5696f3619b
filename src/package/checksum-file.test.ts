import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PackageRejectedError } from '../errors.js';
import { formatChecksumFile, parseChecksumFile } from './checksum-file.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function invalid(text: string): void {
  assert.throws(
    () => parseChecksumFile(Buffer.from(text)),
    (e: unknown) => e instanceof PackageRejectedError && e.code === 'CHECKSUM_INVALID',
  );
}

test('reads sha256sum output in text and binary mode', () => {
  const parsed = parseChecksumFile(Buffer.from(`${A}  det.onnx\n${B} *rec.onnx\n`));
  assert.deepEqual(
    [...parsed],
    [
      ['det.onnx', A],
      ['rec.onnx', B],
    ],
  );
});

test('round-trips what it formats', () => {
  const digests: [string, string][] = [
    ['config.json', A],
    ['keys.txt', B],
  ];
  assert.deepEqual([...parseChecksumFile(formatChecksumFile(digests))], digests);
});

test('refuses uppercase hex, short digests, CR line ends, blank lines, paths and an empty file', () => {
  invalid(`${A.toUpperCase()}  det.onnx\n`);
  invalid(`${A.slice(1)}  det.onnx\n`);
  invalid(`${A}  det.onnx\r\n`);
  invalid(`${A}  det.onnx\n\n${B}  rec.onnx\n`);
  invalid(`${A}  models/det.onnx\n`);
  invalid(`${A}  ../det.onnx\n`);
  invalid(`${A}\tdet.onnx\n`);
  invalid('');
});

test('refuses a name listed twice, naming the line', () => {
  assert.throws(() => parseChecksumFile(Buffer.from(`${A}  det.onnx\n${B}  det.onnx\n`)), /line 2/);
});
