import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sourceDir } from '../../test/helpers/packages.js';
import { tempDir } from '../../test/helpers/tmp.js';

const work = tempDir();

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Runs the CLI in a process where importing pkcs11js fails, as on an install made without a compiler. */
function withoutBinding(...args: string[]) {
  const hook = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function resolve(spec, ctx, next) {
  if (spec === 'pkcs11js') throw new Error('Cannot find package pkcs11js');
  return next(spec, ctx);
}\`));`)}`;
  return spawnSync(process.execPath, ['--import', hook, cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, HOTOCR_PKCS11_PIN: '1234' },
  });
}

test('signing with a PKCS#11 token without the binding installed says how to install it', () => {
  const r = withoutBinding(
    'pack',
    fileURLToPath(new URL('.', import.meta.url)),
    '--pkcs11-module',
    '/usr/lib/softhsm/libsofthsm2.so',
    '--pkcs11-token',
    'hotocr',
    '--pkcs11-key',
    'release',
    '--out',
    '/nonexistent/never.zip',
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^PKCS11_UNAVAILABLE: .*pkcs11js.*g\+\+, make and python3.*npm ci/m);
});

test('keygen, pack with a key file and verify run without the binding', async () => {
  const src = await sourceDir(join(work, 'src'));
  const keys = join(work, 'keys');
  const out = join(work, 'pkg.zip');
  for (const args of [
    ['keygen', '--type', 'ecdsa', '--out', keys],
    ['pack', src, '--key', join(keys, 'signing.key'), '--out', out],
    ['verify', out, '--trust', join(keys, 'signing.pub')],
  ]) {
    const r = withoutBinding(...args);
    assert.equal(r.status, 0, `${args[0]}: ${r.stderr}`);
  }
});
