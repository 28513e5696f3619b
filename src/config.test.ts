import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/helpers/tmp.js';
import { readServeConfig, SERVE_SETTINGS, serveDefaults, serveOptions } from './config.js';
import type { HotocrError } from './errors.js';

const work = tempDir();
const settingInvalid = (pattern: RegExp) => (e: HotocrError) =>
  e.code === 'SETTING_INVALID' && pattern.test(e.message);

describe('the settings of hotocr serve', () => {
  test('a flag wins over its variable, the variable over the default', () => {
    assert.equal(readServeConfig({}, {}).port, 8080);
    assert.equal(readServeConfig({}, { HOTOCR_PORT: '9000' }).port, 9000);
    assert.equal(readServeConfig({ port: '9100' }, { HOTOCR_PORT: '9000' }).port, 9100);
    assert.deepEqual(readServeConfig({}, {}).model, []);
    // --model repeats; the variable lists packages comma-separated.
    const trust = { HOTOCR_TRUST: 'keys' };
    assert.deepEqual(readServeConfig({ model: ['a.zip', 'b.zip'] }, trust).model, ['a.zip', 'b.zip']);
    assert.deepEqual(readServeConfig({}, { ...trust, HOTOCR_MODEL: 'a.zip,b.zip' }).model, [
      'a.zip',
      'b.zip',
    ]);
    assert.equal(readServeConfig({}, { HOTOCR_MODELS: 'incoming' }).models, join(process.cwd(), 'incoming'));
  });

  test('a value out of range names the flag and the variable', () => {
    assert.throws(
      () => readServeConfig({ keepWarm: '17' }, {}),
      settingInvalid(/--keep-warm \(HOTOCR_KEEP_WARM\) must be a whole number from 0 to 16, not "17"/),
    );
    assert.throws(
      () => readServeConfig({}, { HOTOCR_MAX_QUEUE: 'lots' }),
      settingInvalid(/--max-queue \(HOTOCR_MAX_QUEUE\)/),
    );
  });

  test('a flag that is not a setting is refused, not ignored', () => {
    assert.throws(() => readServeConfig({ keepWram: '1' }, {}), settingInvalid(/keepWram is not a setting/));
  });

  test('on/off settings: the flag, else 1 or 0, else the default', () => {
    assert.equal(readServeConfig({}, {}).keepThreads, true);
    assert.equal(readServeConfig({ keepThreads: false }, {}).keepThreads, false);
    assert.equal(readServeConfig({}, { HOTOCR_KEEP_THREADS: '0' }).keepThreads, false);
    assert.equal(readServeConfig({ allowPinning: true }, {}).allowPinning, true);
    assert.equal(readServeConfig({}, { HOTOCR_ALLOW_PINNING: '1' }).allowPinning, true);
    assert.throws(
      () => readServeConfig({}, { HOTOCR_ALLOW_PINNING: 'yes' }),
      settingInvalid(/must be 1 or 0/),
    );
  });

  test('lists: a repeated flag wins over the variable, unless the two add up', () => {
    assert.deepEqual(readServeConfig({}, { HOTOCR_LOADERS: './a.js, b' }).loaders, ['./a.js', 'b']);
    assert.deepEqual(readServeConfig({ loader: ['./c.js'] }, { HOTOCR_LOADERS: './a.js' }).loaders, [
      './c.js',
    ]);
    assert.deepEqual(
      readServeConfig({ registryInsecure: ['r1:5000'] }, { HOTOCR_REGISTRY_INSECURE: 'r2:5000' })
        .registryInsecure,
      ['r1:5000', 'r2:5000'],
    );
    assert.deepEqual(readServeConfig({ peers: ['http://a:8080,http://b:8080'] }, {}).peers, [
      'http://a:8080',
      'http://b:8080',
    ]);
  });

  test('secrets: from a file or inline, once, and long enough', () => {
    const file = join(work, 'token');
    writeFileSync(file, 'a-token-long-enough-1234\n');
    assert.equal(readServeConfig({ adminTokenFile: file }, {}).adminToken, 'a-token-long-enough-1234');
    assert.equal(
      readServeConfig({}, { HOTOCR_ADMIN_TOKEN: 'b-token-long-enough-1234' }).adminToken,
      'b-token-long-enough-1234',
    );
    assert.throws(
      () => readServeConfig({ adminTokenFile: file }, { HOTOCR_ADMIN_TOKEN: 'b-token-long-enough-1234' }),
      settingInvalid(/once/),
    );
    assert.throws(() => readServeConfig({ adminToken: 'short' }, {}), settingInvalid(/at least 16/));
    assert.throws(
      () => readServeConfig({ adminTokenFile: join(work, 'missing') }, {}),
      settingInvalid(/Cannot read/),
    );
  });

  test('settings that need each other', () => {
    assert.throws(() => readServeConfig({ model: 'x.zip' }, {}), settingInvalid(/--model needs --trust/));
    assert.throws(
      () => readServeConfig({ trust: 'keys' }, {}),
      settingInvalid(/needs a way to receive packages/),
    );
  });

  test('hotocr serve --help lists every setting with its variable', () => {
    const cli = fileURLToPath(new URL('cli/main.js', import.meta.url));
    const help = spawnSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8' }).stdout;
    for (const option of serveOptions()) {
      assert.match(help, new RegExp(`${option.long}\\b`), option.long);
      const env = /\((HOTOCR_[A-Z_]+)/.exec(option.description)?.[1];
      assert.ok(env && help.includes(env), `${option.long} names its variable`);
    }
    assert.equal(Object.keys(SERVE_SETTINGS).length, Object.keys(serveDefaults()).length);
  });

  test('nothing but src/config.ts reads the environment', () => {
    const src = fileURLToPath(new URL('.', import.meta.url)).replace(`${join('dist', 'src')}`, 'src');
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (
          entry.name.endsWith('.ts') &&
          !entry.name.endsWith('.test.ts') &&
          path !== join(src, 'config.ts')
        )
          if (/process\.env\b/.test(readFileSync(path, 'utf8'))) offenders.push(path.slice(src.length));
      }
    };
    walk(src);
    assert.deepEqual(offenders, []);
  });
});
