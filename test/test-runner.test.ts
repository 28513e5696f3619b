/**
 * The test runner's check of what the system must have: with a package missing it installs
 * it (as root) or stops at once naming it, before any test starts. Debian's tools are
 * stood in for by scripts on PATH that say every package is missing and record installs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from './helpers/tmp.js';

const ROOT = join(import.meta.dirname, '..', '..');
const work = tempDir();

async function fakeDebian(): Promise<{ path: string; installs: string }> {
  const installs = join(work, 'installs.txt');
  await writeFile(join(work, 'dpkg-query'), '#!/bin/sh\nexit 1\n');
  await writeFile(join(work, 'apt-get'), `#!/bin/sh\necho "$@" >> '${installs}'\n`);
  await chmod(join(work, 'dpkg-query'), 0o755);
  await chmod(join(work, 'apt-get'), 0o755);
  return { path: `${work}:${process.env.PATH}`, installs };
}

function runTests(filter: string, env: Record<string, string>) {
  // Without the parent's test context, the runner it starts reports as from a terminal.
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  return spawnSync(process.execPath, ['scripts/run-tests.mjs', filter], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...parent, ...env },
    timeout: 120_000,
  });
}

test('stops before any test, naming the missing packages and the line that installs them', async () => {
  const { path } = await fakeDebian();
  const r = runTests('signing', { PATH: path, HOTOCR_NO_SYSTEM_INSTALL: '1' });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /missing Debian packages: .*softhsm2 opensc/);
  assert.match(r.stderr, /softhsm: a PKCS#11 token/);
  assert.match(r.stderr, /apt-get install -y --no-install-recommends .*softhsm2/);
  assert.doesNotMatch(r.stdout, /^# Subtest/m, 'no test started');
});

test('as root, installs what is missing, saying so, then runs the tests', async (t) => {
  const { path, installs } = await fakeDebian();
  const r = runTests('deploy', { PATH: path });
  if (process.getuid?.() !== 0) {
    // Not root: the same refusal as with installs turned off.
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing Debian packages/);
    t.diagnostic('not root: checked the refusal instead of the install');
    return;
  }
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /installing the Debian packages these tests need: openssl zip unzip ca-certificates/,
  );
  const calls = await readFile(installs, 'utf8');
  assert.match(calls, /^update -qq$/m);
  assert.match(calls, /^install -y -qq --no-install-recommends openssl zip unzip ca-certificates$/m);
  assert.match(r.stdout, /^# pass [1-9]/m);
});
