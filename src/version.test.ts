import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VERSION } from './version.js';

test('hotocr --version prints the version package.json holds', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(VERSION, pkg.version);
  const cli = spawnSync(
    process.execPath,
    [fileURLToPath(new URL('cli/main.js', import.meta.url)), '--version'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(cli.stdout.trim(), pkg.version);
});
