import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { keygen } from '../src/pack/index.js';
import { packWith, sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const work = tempDir();
let keys: { privateKeyPath: string; publicKeyPath: string };

/**
 * Verifies `pkg` in a fresh process and returns its peak resident memory in MiB: VmHWM,
 * which starts afresh at exec (getrusage's maxRSS does not: it would carry over the
 * test process's own peak from the fork, as it did when this test was flaky).
 */
async function peakRssWhileVerifying(
  pkg: string,
  options: { allowLegacySignatures?: boolean; refused?: string } = {},
): Promise<number> {
  const verify = join(import.meta.dirname, '..', 'src', 'verify', 'index.js');
  const script = `
    const { TrustStore, verifyPackage } = await import(${JSON.stringify(verify)});
    const verifying = verifyPackage(${JSON.stringify(pkg)}, {
      trust: await TrustStore.load(${JSON.stringify(keys.publicKeyPath)}),
      allowLegacySignatures: ${options.allowLegacySignatures === true},
    });
    ${
      options.refused
        ? `const code = await verifying.then(() => 'accepted', (e) => e.code);
           if (code !== ${JSON.stringify(options.refused)}) throw new Error('expected ${options.refused}, got ' + code);`
        : 'await verifying;'
    }
    const { readFileSync } = await import('node:fs');
    const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    process.stdout.write(String(Number(hwm[1]) / 1024));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return Number(stdout);
}

async function packageWithGraphOf(mib: number): Promise<string> {
  const dir = await sourceDir(join(work, `src-${mib}`));
  await writeFile(join(dir, 'rec.onnx'), randomBytes(mib * 1024 * 1024));
  return packWith(dir, keys.privateKeyPath, join(work, `pkg-${mib}.zip`));
}

/** A seed-style package: checksum.sha256 lists model.onnx alone, signed by no trusted key. */
async function seedStylePackage(mib: number): Promise<string> {
  const dir = join(work, `seed-${mib}`);
  const out = join(work, `seed-${mib}.zip`);
  await run('bash', [
    '-euo',
    'pipefail',
    '-c',
    `mkdir -p '${dir}' && cd '${dir}'
    head -c ${mib * 1024 * 1024} /dev/urandom > model.onnx
    echo '{}' > config.json
    sha256sum model.onnx > checksum.sha256
    head -c 256 /dev/urandom > signature.sig
    zip -q -Z store '${out}' model.onnx config.json checksum.sha256 signature.sig`,
  ]);
  return out;
}

before(async () => {
  keys = await keygen({ type: 'ed25519', out: join(work, 'keys') });
});

test('verification memory stays flat whatever the package size', async () => {
  const small = await peakRssWhileVerifying(await packageWithGraphOf(4));
  const large = await peakRssWhileVerifying(await packageWithGraphOf(160));
  // A 156 MiB larger graph must not cost more than a few chunks of memory.
  assert.ok(large - small < 24, `peak RSS grew from ${small.toFixed(0)} MiB to ${large.toFixed(0)} MiB`);
});

test('a seed-style package no trusted key signed costs no more memory than a small one, opted in or not', async () => {
  const small = await peakRssWhileVerifying(await seedStylePackage(1), {
    refused: 'LEGACY_SIGNATURE_REFUSED',
  });
  const large = await seedStylePackage(160);
  const refused = await peakRssWhileVerifying(large, { refused: 'LEGACY_SIGNATURE_REFUSED' });
  const streamed = await peakRssWhileVerifying(large, {
    allowLegacySignatures: true,
    refused: 'KEY_UNTRUSTED',
  });
  assert.ok(
    refused - small < 24,
    `refused by shape: peak RSS grew from ${small.toFixed(0)} to ${refused.toFixed(0)} MiB`,
  );
  assert.ok(
    streamed - small < 24,
    `streamed under the opt-in: peak RSS grew from ${small.toFixed(0)} to ${streamed.toFixed(0)} MiB`,
  );
});
