/**
 * Fuzzing the package reader and verifier: valid packages mutated with a fixed seed (bit
 * flips, truncation, spliced bytes, rewritten ZIP header fields, entries renamed, checksum
 * lists replaced and signed again). No case may crash, hang past a bound, leak a file or a
 * descriptor, or be accepted unless the files it yields are the original's.
 *
 * HOTOCR_FUZZ_CASES (default 5000) and HOTOCR_FUZZ_SEED (default 20261125) change the run.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { HotocrError, PackageRejectedError, REJECTION_CODES } from '../src/errors.js';
import { keygen } from '../src/pack/index.js';
import { TrustStore, type VerifiedPackage, verifyPackage } from '../src/verify/index.js';
import { manifest, packWith, sourceDir } from './helpers/packages.js';
import { prng } from './helpers/random.js';
import { makeZip, type RawEntry } from './helpers/raw-zip.js';
import { isolatedTmp, tempDir } from './helpers/tmp.js';

const CASES = Number(process.env.HOTOCR_FUZZ_CASES ?? 5000);
const SEED = Number(process.env.HOTOCR_FUZZ_SEED ?? 20261125);
/** The longest one case may take; a package of a few kilobytes verifies in milliseconds. */
const CASE_BOUND_MS = 5000;

const tmp = isolatedTmp();
const work = tempDir();

interface Original {
  zip: Buffer;
  files: Map<string, Buffer>;
  sign(data: Buffer): Buffer;
}

/** Where ZIP records start: local headers, central headers, the end record. */
function records(zip: Buffer): { kind: 'local' | 'central' | 'end'; at: number }[] {
  const out: { kind: 'local' | 'central' | 'end'; at: number }[] = [];
  for (let i = 0; i + 4 <= zip.length; i++) {
    if (zip[i] !== 0x50 || zip[i + 1] !== 0x4b) continue;
    const sig = zip.readUInt32LE(i);
    if (sig === 0x04034b50) out.push({ kind: 'local', at: i });
    else if (sig === 0x02014b50) out.push({ kind: 'central', at: i });
    else if (sig === 0x06054b50) out.push({ kind: 'end', at: i });
  }
  return out;
}

/** Field offsets and widths inside each record, as APPNOTE lays them out. */
const FIELDS: Record<'local' | 'central' | 'end', [number, 2 | 4][]> = {
  local: [
    [4, 2],
    [6, 2],
    [8, 2],
    [14, 4],
    [18, 4],
    [22, 4],
    [26, 2],
    [28, 2],
  ],
  central: [
    [8, 2],
    [10, 2],
    [16, 4],
    [20, 4],
    [24, 4],
    [28, 2],
    [30, 2],
    [32, 2],
    [34, 2],
    [38, 4],
    [42, 4],
  ],
  end: [
    [4, 2],
    [6, 2],
    [8, 2],
    [10, 2],
    [12, 4],
    [16, 4],
    [20, 2],
  ],
};

const NAMES = [
  '../config.json',
  '/etc/passwd',
  'a/../../b',
  'C:\\evil',
  'config.json\u0000.txt',
  '',
  '.',
  'x'.repeat(300),
  'rec.onnx ',
  'REC.ONNX',
  'réc.onnx',
  'config.json',
  'checksum.sha256',
  '\u202ekcod.onnx',
];

type Mutation = (zip: Buffer, r: () => number, original: Original) => { kind: string; bytes: Buffer };

const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)]!;
const int = (n: number, r: () => number) => Math.floor(r() * n);

function entriesOf(original: Original): RawEntry[] {
  return [...original.files].map(([name, data]) => ({ name, data }));
}

function checksumList(files: Map<string, Buffer>): string {
  return [...files]
    .filter(([n]) => n !== 'checksum.sha256' && n !== 'signature.sig')
    .map(([n, d]) => `${createHash('sha256').update(d).digest('hex')}  ${n}\n`)
    .join('');
}

const MUTATIONS: Mutation[] = [
  (zip, r) => {
    const bytes = Buffer.from(zip);
    const flips = 1 + int(8, r);
    for (let i = 0; i < flips; i++) {
      const at = int(bytes.length, r);
      bytes[at] = bytes[at]! ^ (1 << int(8, r));
    }
    return { kind: 'bit flips', bytes };
  },
  (zip, r) => ({ kind: 'truncation', bytes: zip.subarray(0, int(zip.length, r)) }),
  (zip, r) => {
    const at = int(zip.length, r);
    const choice = int(3, r);
    if (choice === 0) {
      const junk = Buffer.alloc(1 + int(64, r));
      for (let i = 0; i < junk.length; i++) junk[i] = int(256, r);
      return { kind: 'spliced junk', bytes: Buffer.concat([zip.subarray(0, at), junk, zip.subarray(at)]) };
    }
    const from = int(zip.length, r);
    const length = 1 + int(512, r);
    if (choice === 1)
      return {
        kind: 'spliced copy',
        bytes: Buffer.concat([zip.subarray(0, at), zip.subarray(from, from + length), zip.subarray(at)]),
      };
    return { kind: 'spliced cut', bytes: Buffer.concat([zip.subarray(0, at), zip.subarray(at + length)]) };
  },
  (zip, r) => {
    const bytes = Buffer.from(zip);
    const recs = records(bytes);
    const rec = pick(recs, r);
    const [offset, width] = pick(FIELDS[rec.kind], r);
    const at = rec.at + offset;
    const max = width === 2 ? 0xffff : 0xffffffff;
    const current = width === 2 ? bytes.readUInt16LE(at) : bytes.readUInt32LE(at);
    const value = pick([0, 1, max, max - 1, current + 1, current - 1, int(max, r), current * 2], r);
    const v = Math.max(0, Math.min(max, value)) >>> 0;
    if (width === 2) bytes.writeUInt16LE(v, at);
    else bytes.writeUInt32LE(v, at);
    return { kind: `header ${rec.kind}+${offset}`, bytes };
  },
  (_zip, r, original) => {
    const entries = entriesOf(original);
    const e = pick(entries, r);
    const name = pick(NAMES, r);
    if (r() < 0.5) e.name = name;
    else e.localName = name;
    return { kind: 'renamed entry', bytes: makeZip(entries) };
  },
  (_zip, r, original) => {
    // A checksum list replaced and signed again with the trusted key: what an attacker with
    // the key cannot do, and what a broken release pipeline might.
    const files = new Map(original.files);
    const lines = checksumList(files).split('\n').filter(Boolean);
    const choice = int(5, r);
    if (choice === 0) lines.splice(int(lines.length, r), 1);
    else if (choice === 1) lines.push(`${'0'.repeat(64)}  ${pick(NAMES, r)}`);
    else if (choice === 2) lines[int(lines.length, r)] = `${'f'.repeat(63)}  det.onnx`;
    else if (choice === 3) lines.push(lines[int(lines.length, r)]!);
    else {
      const junk = Buffer.alloc(1 + int(200, r));
      for (let i = 0; i < junk.length; i++) junk[i] = int(256, r);
      lines[int(lines.length, r)] = junk.toString('latin1');
    }
    const list = Buffer.from(`${lines.join('\n')}\n`);
    files.set('checksum.sha256', list);
    files.set('signature.sig', original.sign(list));
    return { kind: 'checksum list', bytes: makeZip([...files].map(([name, data]) => ({ name, data }))) };
  },
  (_zip, r, original) => {
    // Entries duplicated, dropped, added or compressed differently.
    const entries = entriesOf(original);
    const choice = int(4, r);
    if (choice === 0) entries.push({ ...pick(entries, r) });
    else if (choice === 1) entries.splice(int(entries.length, r), 1);
    else if (choice === 2) entries.push({ name: pick(NAMES, r) || 'extra.bin', data: Buffer.from('extra') });
    else for (const e of entries) e.method = r() < 0.5 ? 8 : 0;
    return { kind: 'entries', bytes: makeZip(entries) };
  },
];

test(`${CASES} mutated packages (seed ${SEED}): none crashes, hangs, leaks or is accepted with other contents`, async () => {
  const dir = join(work, 'fuzz');
  const key = await keygen({ type: 'ed25519', out: join(dir, 'key') });
  const trust = await TrustStore.load(key.publicKeyPath);
  const privateKey = createPrivateKey(await readFile(key.privateKeyPath));
  const src = await sourceDir(join(dir, 'src'), manifest());
  const zip = await readFile(await packWith(src, key.privateKeyPath, join(dir, 'original.zip')));
  const valid = await verifyPackage(join(dir, 'original.zip'), { trust, keepBytes: true });
  const original: Original = {
    zip,
    files: new Map([...valid.files].map(([n, d]) => [n, Buffer.from(d)])),
    sign: (data) => sign(null, data, privateKey),
  };
  const r = prng(SEED);
  const fdsBefore = readdirSync('/proc/self/fd').length;
  const outcomes = new Map<string, number>();
  const slowest = { ms: 0, kind: '' };
  let accepted = 0;
  for (let i = 0; i < CASES; i++) {
    const { kind, bytes } = pick(MUTATIONS, r)(zip, r, original);
    const path = join(dir, `case-${i}.zip`);
    await writeFile(path, bytes);
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      verifyPackage(path, { trust, keepBytes: true }).then(
        (pkg): VerifiedPackage | Error => pkg,
        (e: unknown) => e as Error,
      ),
      new Promise<'hang'>((resolve) => {
        timer = setTimeout(() => resolve('hang'), CASE_BOUND_MS);
      }),
    ]);
    clearTimeout(timer);
    const ms = performance.now() - started;
    if (ms > slowest.ms) Object.assign(slowest, { ms, kind });
    const where = `case ${i} (${kind}, seed ${SEED})`;
    assert.notEqual(result, 'hang', `${where} took over ${CASE_BOUND_MS} ms`);
    if (result instanceof Error) {
      assert.ok(
        result instanceof PackageRejectedError &&
          (REJECTION_CODES as readonly string[]).includes(result.code),
        `${where} failed with something other than a refusal: ${result instanceof HotocrError ? result.code : result.name}: ${result.message}`,
      );
      outcomes.set(result.code, (outcomes.get(result.code) ?? 0) + 1);
    } else {
      const pkg = result as VerifiedPackage;
      accepted++;
      assert.deepEqual([...pkg.files.keys()].sort(), [...original.files.keys()].sort(), `${where} accepted`);
      for (const [name, data] of pkg.files)
        assert.ok(
          Buffer.from(data).equals(original.files.get(name)!),
          `${where} accepted other bytes for ${name}`,
        );
      outcomes.set('accepted (same contents)', (outcomes.get('accepted (same contents)') ?? 0) + 1);
    }
    await rm(path);
  }
  const fdsAfter = readdirSync('/proc/self/fd').length;
  console.log(
    `fuzz-package: ${CASES} cases, seed ${SEED}; slowest ${slowest.ms.toFixed(0)} ms (${slowest.kind}); ${accepted} accepted with the original's contents; refusals ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`,
  );
  assert.ok(fdsAfter <= fdsBefore + 2, `descriptors: ${fdsBefore} before, ${fdsAfter} after`);
  assert.deepEqual(tmp.leftovers(), [], 'temporary files left behind');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('case-')),
    [],
  );
  // The run must have exercised the reader deeply, not stopped at the first byte.
  for (const code of ['ARCHIVE_INVALID', 'CHECKSUM_MISMATCH', 'SIGNATURE_INVALID', 'PATH_UNSAFE'])
    assert.ok((outcomes.get(code) ?? 0) > 0, `no case was refused with ${code}`);
});
