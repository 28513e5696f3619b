/**
 * Time to verify the bundled 16 MB PP-OCRv4 package (det, rec, cls graphs and keys), as a
 * ratio to `sha256sum` over the same files, measured in the same run.
 *
 *   npm run build && node dist/bench/verify.js [--runs 21]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFileSigner, keygen, pack, writeBundledSource } from '../src/pack/index.js';
import { TrustStore, verifyPackage } from '../src/verify/index.js';
import { benchOptions } from './lib/options.js';
import { machine, median } from './lib/stats.js';

const { runs } = benchOptions(
  'node dist/bench/verify.js',
  'Time to verify the bundled package, against sha256sum over the same files.',
  { runs: { type: 'number', default: 21, min: 1, help: 'runs of each, medians reported' } },
);
const dir = mkdtempSync(join(tmpdir(), 'hotocr-bench-verify-'));
try {
  const src = await writeBundledSource(join(dir, 'src'));
  const rows: { type: string; verify: number; sha256sum: number; hotocrCli: number }[] = [];
  for (const type of ['rsa', 'ecdsa', 'ed25519'] as const) {
    const keys = await keygen({ type, out: join(dir, type) });
    const out = join(dir, `ppocr-${type}.zip`);
    await pack(src, { signer: await keyFileSigner(keys.privateKeyPath), out });
    const trust = await TrustStore.load(keys.publicKeyPath);
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
          keys.publicKeyPath,
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
  console.log(`bench/verify: bundled PP-OCRv4 package, ${runs} runs each, medians; ${await machine()}`);
  console.log('key       verifyPackage ms  sha256sum ms  ratio  hotocr verify (CLI, with node start) ms');
  for (const r of rows) {
    console.log(
      `${r.type.padEnd(9)} ${r.verify.toFixed(1).padStart(16)} ${r.sha256sum.toFixed(1).padStart(13)} ${(r.verify / r.sha256sum).toFixed(2).padStart(6)}x ${r.hotocrCli.toFixed(0).padStart(10)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
