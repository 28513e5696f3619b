/**
 * Time to verify the bundled 16 MB PP-OCRv4 package (det, rec, cls graphs and keys), as a
 * ratio to `sha256sum` over the same files, measured in the same run: signed by a trusted
 * key of each type, and by a certificate chain (leaf, intermediate) to a pinned root. The
 * same files signed with OpenSSF Model Signing (a P-256 key made here, model.sig written as
 * the reference writes it), as a folder and as a ZIP; and a keyless (Sigstore) OMS fixture,
 * verified offline against the embedded public-good trusted root.
 *
 *   npm run build && node dist/bench/verify.js [--runs 21]
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import {
  loadSigstoreTrustedRoot,
  type OmsForm,
  TrustStore,
  verifyOmsModel,
  verifyPackage,
} from '../src/verify/index.js';
// The minimal OMS writer the tests use: hotocr verifies OMS signatures, it does not make them.
import { FIXTURES, signFolder } from '../test/helpers/oms.js';
import { benchOptions } from './lib/options.js';
import { machine, median, processCpuMs } from './lib/stats.js';

const { runs } = benchOptions(
  'node dist/bench/verify.js',
  'Time to verify the bundled package, against sha256sum over the same files.',
  { runs: { type: 'number', default: 21, min: 1, help: 'runs of each, medians reported' } },
);
/** A root, an intermediate and a code-signing leaf made with openssl in `dir`; signer.pem's bytes. */
function certificateChain(dir: string): { root: string; leafKey: string; pem: Buffer } {
  mkdirSync(dir, { recursive: true });
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  writeFileSync(
    join(dir, 'ext.cnf'),
    '[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n',
  );
  for (const [name, algo] of [
    ['root', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072']],
    ['int', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072']],
    ['leaf', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
  ] as const)
    openssl('genpkey', ...algo, '-out', `${name}.key`);
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'root.key',
    '-subj',
    '/CN=bench root',
    '-days',
    '30',
    '-config',
    'ext.cnf',
    '-extensions',
    'ca',
    '-out',
    'root.crt',
  );
  for (const [name, issuer, ext] of [
    ['int', 'root', 'ca'],
    ['leaf', 'int', 'leaf'],
  ] as const) {
    openssl(
      'req',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      `/CN=bench ${name}`,
      '-config',
      'ext.cnf',
      '-out',
      `${name}.csr`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer}.crt`,
      '-CAkey',
      `${issuer}.key`,
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      'ext.cnf',
      '-extensions',
      ext,
      '-out',
      `${name}.crt`,
    );
  }
  return {
    root: join(dir, 'root.crt'),
    leafKey: join(dir, 'leaf.key'),
    pem: Buffer.concat([readFileSync(join(dir, 'leaf.crt')), readFileSync(join(dir, 'int.crt'))]),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-verify-'));
try {
  const src = await writeBundledSource(join(dir, 'src'));
  const rows: { type: string; verify: number; sha256sum: number; hotocrCli: number }[] = [];
  for (const type of ['rsa', 'ecdsa', 'ed25519', 'chain'] as const) {
    const out = join(dir, `ppocr-${type}.zip`);
    let trustPath: string;
    if (type === 'chain') {
      // root (RSA-3072) -> intermediate (RSA-3072) -> leaf (ECDSA P-256), made with openssl.
      const chain = certificateChain(join(dir, 'chain'));
      await pack(src, { signer: await keyFileSigner(chain.leafKey), out, certificateChain: chain.pem });
      trustPath = chain.root;
    } else {
      const keys = await keygen({ type, out: join(dir, type) });
      await pack(src, { signer: await keyFileSigner(keys.privateKeyPath), out });
      trustPath = keys.publicKeyPath;
    }
    const trust = await TrustStore.load(trustPath);
    const files = ['det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt', 'config.json'].map((f) => join(src, f));
    const verifyTimes: number[] = [];
    const shaTimes: number[] = [];
    const cliTimes: number[] = [];
    await verifyPackage(out, { trust }); // warm the page cache and the JIT
    for (let i = 0; i < runs; i++) {
      // Interleaved, so a noisy neighbour hits both sides alike.
      let t = process.hrtime.bigint();
      await verifyPackage(out, { trust });
      verifyTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      execFileSync('sha256sum', files);
      shaTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (i < 5) {
        t = process.hrtime.bigint();
        execFileSync(process.execPath, [
          join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
          'verify',
          out,
          '--trust',
          trustPath,
        ]);
        cliTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
    rows.push({
      type,
      verify: median(verifyTimes),
      sha256sum: median(shaTimes),
      hotocrCli: median(cliTimes),
    });
  }
  // The same five files signed with OMS, as a folder (model.sig beside them) and as a ZIP.
  const omsKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const omsDir = join(dir, 'oms');
  cpSync(src, omsDir, { recursive: true });
  await signFolder(omsDir, omsKeys.privateKey);
  const omsZip = join(dir, 'ppocr-oms.zip');
  execFileSync(
    'zip',
    ['-q', '-X', '-0', omsZip, 'config.json', 'det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt', 'model.sig'],
    {
      cwd: omsDir,
    },
  );
  const omsPub = join(dir, 'oms.pub');
  writeFileSync(omsPub, omsKeys.publicKey.export({ type: 'spki', format: 'pem' }));
  const omsTrust = await TrustStore.load(omsPub);
  const omsFiles = ['det.onnx', 'rec.onnx', 'cls.onnx', 'keys.txt', 'config.json'].map((f) =>
    join(omsDir, f),
  );
  const omsRows: { type: string; verify: number; sha256sum: number; hotocrCli: number }[] = [];
  for (const [type, path, form] of [
    ['oms folder', omsDir, 'directory'],
    ['oms zip', omsZip, 'archive'],
  ] as [string, string, OmsForm][]) {
    const verifyTimes: number[] = [];
    const shaTimes: number[] = [];
    const cliTimes: number[] = [];
    await verifyOmsModel(path, form, { trust: omsTrust });
    for (let i = 0; i < runs; i++) {
      let t = process.hrtime.bigint();
      await verifyOmsModel(path, form, { trust: omsTrust });
      verifyTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      execFileSync('sha256sum', omsFiles);
      shaTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (i < 5) {
        t = process.hrtime.bigint();
        execFileSync(process.execPath, [
          join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
          'verify',
          path,
          '--trust',
          omsPub,
        ]);
        cliTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
    omsRows.push({
      type,
      verify: median(verifyTimes),
      sha256sum: median(shaTimes),
      hotocrCli: median(cliTimes),
    });
  }
  // A keyless fixture (two 8-byte files): nearly all of it is the Sigstore checks, offline.
  const keyless = join(FIXTURES, 'v1.0.0-sigstore');
  const policy = { identity: 'stefanb@us.ibm.com', issuer: 'https://sigstore.verify.ibm.com/oauth2' };
  const rootTimes: number[] = [];
  const keylessTimes: number[] = [];
  const keylessCli: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = process.hrtime.bigint();
    const trustedRoot = await loadSigstoreTrustedRoot();
    rootTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    await verifyOmsModel(keyless, 'directory', { keyless: policy, trustedRoot });
    keylessTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (i < 5) {
      t = process.hrtime.bigint();
      execFileSync(process.execPath, [
        join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
        'verify',
        keyless,
        '--identity',
        policy.identity,
        '--issuer',
        policy.issuer,
      ]);
      keylessCli.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }

  // Where the work runs: a 96 MiB graph verified in this process, the bytes kept as a server
  // keeps them; CPU of the whole process against that of the main thread, which answers requests.
  const big = join(dir, 'big');
  await writeBundledSource(big);
  writeFileSync(join(big, 'rec.onnx'), randomBytes(96 * 1024 * 1024));
  const bigKeys = await keygen({ type: 'ed25519', out: join(dir, 'big-key') });
  const bigPkg = join(dir, 'big.zip');
  await pack(big, { signer: await keyFileSigner(bigKeys.privateKeyPath), out: bigPkg });
  const bigTrust = await TrustStore.load(bigKeys.publicKeyPath);
  const whole: number[] = [];
  const main: number[] = [];
  for (let i = 0; i < Math.min(runs, 7); i++) {
    const before = await processCpuMs(process.pid);
    await verifyPackage(bigPkg, { trust: bigTrust, keepBytes: true });
    const after = await processCpuMs(process.pid);
    whole.push(after.whole - before.whole);
    main.push(after.main - before.main);
  }
  console.log(
    `bench/verify: bundled PP-OCRv4 package (hotocr and OMS), ${runs} runs each, medians; ${await machine()}`,
  );
  console.log(
    `a 96 MiB graph verified in-process, bytes kept: ${median(whole).toFixed(0)} ms of CPU, of which the main thread ${median(main).toFixed(0)} ms (median of ${whole.length}; /proc ticks of 10 ms)`,
  );
  console.log('signer      verify ms  sha256sum ms  ratio  hotocr verify (CLI, with node start) ms');
  for (const r of [...rows, ...omsRows]) {
    console.log(
      `${r.type.padEnd(11)} ${r.verify.toFixed(1).padStart(9)} ${r.sha256sum.toFixed(1).padStart(13)} ${(r.verify / r.sha256sum).toFixed(2).padStart(6)}x ${r.hotocrCli.toFixed(0).padStart(10)}`,
    );
  }
  console.log(
    `oms keyless fixture (v1.0.0-sigstore), offline: verifyOmsModel ${median(keylessTimes).toFixed(1)} ms, loading the embedded trusted root ${median(rootTimes).toFixed(1)} ms, hotocr verify (CLI, with node start) ${median(keylessCli).toFixed(0)} ms`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
