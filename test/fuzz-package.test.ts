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
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { HotocrError, PackageRejectedError, REJECTION_CODES } from '../src/errors.js';
import { keygen } from '../src/pack/index.js';
import { TrustStore, type VerifiedPackage, verifyPackage } from '../src/verify/index.js';
import { CA_EXT, LEAF_EXT, opensslIssue, opensslRoot, type TestCert } from './helpers/openssl.js';
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

/** Chain cases: HOTOCR_FUZZ_CHAIN_CASES (default 400). */
const CHAIN_CASES = Number(process.env.HOTOCR_FUZZ_CHAIN_CASES ?? 400);
/**
 * The trust stage's budget for a chain case, counted in looks at the clock rather than in
 * milliseconds: the check looks once per step (a certificate, a link, the signature), so a
 * case that needs more steps than a path of five certificates ends in VERIFY_TIMEOUT.
 */
const CHAIN_STEPS = 20;
/** Bounds a case that would never end (the fault this run guards against), so that it fails instead. */
const CHAIN_HANG_MS = 5000;

test(`${CHAIN_CASES} mutated certificate chains (seed ${SEED}): each answered within ${CHAIN_STEPS} steps with a documented code, none accepted but a valid path`, async () => {
  const dir = join(work, 'chains');
  await mkdir(dir, { recursive: true });
  const ec = { keyType: 'ec-p256' as const };
  const ca = { ...ec, ext: CA_EXT, days: 1000 };
  const leafSpec = { ...ec, ext: LEAF_EXT, days: 100 };
  const root = await opensslRoot(dir, 'root', ec);
  const i1 = await opensslIssue(dir, 'i1', root, ca);
  const i2 = await opensslIssue(dir, 'i2', i1, ca);
  const leaf = await opensslIssue(dir, 'leaf', i2, leafSpec);
  const foreignRoot = await opensslRoot(dir, 'foreign-root', ec);
  const foreign = await opensslIssue(dir, 'foreign', foreignRoot, ca);
  // Loops of two (A issued by B, B by A) and three (A by C, B by A, C by B), each with a leaf.
  const anchors = await Promise.all(
    ['A', 'B', 'C'].map((n) => opensslRoot(dir, `anchor-${n}`, { ...ec, cn: n })),
  );
  const [a0, b0, c0] = anchors as [TestCert, TestCert, TestCert];
  const a = await opensslIssue(dir, 'loop-a', b0, { ...ca, key: a0.key, cn: 'A' });
  const b = await opensslIssue(dir, 'loop-b', a0, { ...ca, key: b0.key, cn: 'B' });
  const a3 = await opensslIssue(dir, 'loop3-a', c0, { ...ca, key: a0.key, cn: 'A' });
  const c3 = await opensslIssue(dir, 'loop3-c', b0, { ...ca, key: c0.key, cn: 'C' });
  const loopLeaf = await opensslIssue(dir, 'loop-leaf', a, leafSpec);
  // Fifty CAs deep.
  const deep: TestCert[] = [];
  for (let i = 0; i < 50; i++) deep.push(await opensslIssue(dir, `deep-${i}`, deep[i - 1] ?? root, ca));
  const deepLeaf = await opensslIssue(dir, 'deep-leaf', deep[49]!, leafSpec);
  // Weak algorithms, and an issuer name that lies (the name of i2, another key).
  const weak = await opensslIssue(dir, 'weak', root, { ext: CA_EXT, keyType: 'rsa-1024', md: 'sha1' });
  const weakLeaf = await opensslIssue(dir, 'weak-leaf', weak, leafSpec);
  const sha1Leaf = await opensslIssue(dir, 'sha1-leaf', i2, { ...leafSpec, md: 'sha1' });
  const impostor = await opensslIssue(dir, 'impostor', i1, { ...ca, cn: 'i2' });

  const pem = async (c: TestCert) => ({ cert: c, text: await readFile(c.cert, 'utf8') });
  const all = await Promise.all(
    [
      root,
      i1,
      i2,
      leaf,
      foreignRoot,
      foreign,
      a,
      b,
      a3,
      c3,
      loopLeaf,
      ...deep,
      deepLeaf,
      weak,
      weakLeaf,
      sha1Leaf,
      impostor,
    ].map(pem),
  );
  const text = new Map(all.map((p) => [p.cert, p.text]));
  const valid = [leaf, i2, i1];
  const r = prng(SEED + 1);
  const CHAINS: { kind: string; make: () => TestCert[] }[] = [
    { kind: 'valid', make: () => (r() < 0.5 ? [...valid] : [...valid, root]) },
    {
      kind: 'reordered',
      make: () => [...valid, root].sort(() => r() - 0.5),
    },
    {
      kind: 'duplicated',
      make: () => {
        const c = [...valid];
        c.splice(int(c.length + 1, r), 0, pick(valid, r));
        return c;
      },
    },
    {
      kind: 'dropped',
      make: () => valid.filter((_, i) => i !== int(valid.length, r)),
    },
    {
      kind: 'foreign',
      make: () => {
        const c = [...valid];
        c.splice(int(c.length + 1, r), r() < 0.5 ? 0 : 1, pick([foreign, foreignRoot], r));
        return c;
      },
    },
    { kind: 'loop of 2', make: () => [loopLeaf, a, b, ...(r() < 0.5 ? [a, b] : [])] },
    { kind: 'loop of 3', make: () => [loopLeaf, a3, b, c3, ...(r() < 0.5 ? [a3] : [])] },
    {
      kind: '50 deep',
      make: () => {
        const full = [deepLeaf, ...[...deep].reverse()];
        return r() < 0.5 ? full : full.slice(0, 1 + int(8, r));
      },
    },
    { kind: 'weak', make: () => (r() < 0.5 ? [weakLeaf, weak] : [sha1Leaf, i2, i1]) },
    { kind: 'issuer name lies', make: () => [leaf, impostor, i1] },
    {
      kind: 'random',
      make: () => Array.from({ length: 1 + int(8, r) }, () => pick(all, r).cert),
    },
  ];
  const trust = TrustStore.fromPem([{ source: 'root.crt', text: text.get(root)! }]);
  const original = await sourceDir(join(dir, 'src'), manifest());
  const files = new Map(
    await Promise.all(
      ['config.json', 'det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt'].map(
        async (n) => [n, await readFile(join(original, n))] as const,
      ),
    ),
  );
  const list = Buffer.from(checksumList(files));
  const keys = new Map<TestCert, ReturnType<typeof createPrivateKey>>();
  const outcomes = new Map<string, number>();
  const slowest = { ms: 0, kind: '' };
  let mostSteps = 0;
  for (let i = 0; i < CHAIN_CASES; i++) {
    const { kind, make } = pick(CHAINS, r);
    const chain = make();
    const signer = chain[0]!;
    if (!keys.has(signer)) keys.set(signer, createPrivateKey(await readFile(signer.key)));
    const path = join(dir, `chain-${i}.zip`);
    await writeFile(
      path,
      makeZip([
        ...[...files].map(([name, data]) => ({ name, data })),
        { name: 'checksum.sha256', data: list },
        { name: 'signature.sig', data: sign('sha256', list, { key: keys.get(signer)!, dsaEncoding: 'der' }) },
        { name: 'signer.pem', data: Buffer.from(chain.map((c) => text.get(c)).join('')) },
      ]),
    );
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let steps = 0;
    const result = await Promise.race([
      verifyPackage(path, { trust, clock: () => steps++, trustBudgetMs: CHAIN_STEPS }).then(
        () => 'accepted',
        (e: unknown) => e as Error,
      ),
      new Promise<'hang'>((resolve) => {
        timer = setTimeout(() => resolve('hang'), CHAIN_HANG_MS);
      }),
    ]);
    clearTimeout(timer);
    const ms = performance.now() - started;
    if (ms > slowest.ms) Object.assign(slowest, { ms, kind });
    mostSteps = Math.max(mostSteps, steps);
    const where = `chain case ${i} (${kind}: ${chain.map((c) => basename(c.cert)).join(' ')})`;
    assert.notEqual(result, 'hang', `${where} was not answered`);
    assert.ok(
      !(result instanceof PackageRejectedError && result.code === 'VERIFY_TIMEOUT'),
      `${where} took more than ${CHAIN_STEPS} steps`,
    );
    if (result === 'accepted') {
      const path = chain.map((c) => basename(c.cert)).join(' ');
      assert.ok(
        path === 'leaf.crt i2.crt i1.crt' || path === 'leaf.crt i2.crt i1.crt root.crt',
        `${where} was accepted`,
      );
    } else {
      assert.ok(
        result instanceof PackageRejectedError &&
          (REJECTION_CODES as readonly string[]).includes(result.code),
        `${where} failed with something other than a refusal: ${(result as Error).message}`,
      );
    }
    const outcome = result === 'accepted' ? 'accepted' : (result as PackageRejectedError).code;
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    await rm(path);
  }
  console.log(
    `fuzz-package chains: ${CHAIN_CASES} cases, seed ${SEED}; slowest ${slowest.ms.toFixed(1)} ms (${slowest.kind}), most steps ${mostSteps}; outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`,
  );
  assert.ok((outcomes.get('accepted') ?? 0) > 0, 'no valid chain was accepted');
  assert.ok((outcomes.get('CERT_CHAIN_INVALID') ?? 0) > 0, 'no chain was refused');
});
