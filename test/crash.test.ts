// test-needs: model
import assert from 'node:assert/strict';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import {
  bundledManifest,
  ensureBundledPackage,
  keyFileSigner,
  pack,
  writeBundledSource,
} from '../src/pack/index.js';
import { StateStore } from '../src/registry/index.js';
import { serveProcess } from './helpers/serve-process.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
const home = join(work, 'home');
const models = join(work, 'models');

const serve = () => serveProcess(['--data', home, '--models', models, '--settle-ms', '200']);

async function servedVersion(url: string): Promise<string> {
  const res = await fetch(`${url}/readyz`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { model: { version: string } }).model.version;
}

/** Runs of kill-and-restart; HOTOCR_CRASH_RUNS changes it. */
const RUNS = Number(process.env.HOTOCR_CRASH_RUNS ?? 20);
const packages: string[] = [];
before(async () => {
  await ensureBundledPackage(home);
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  const src = await writeBundledSource(join(work, 'src'), '4.1.0');
  for (let i = 0; i < RUNS; i++) {
    const v = `4.${i + 1}.0`;
    await writeFile(join(src, 'config.json'), JSON.stringify(bundledManifest(v), null, 2));
    const out = join(work, `ppocr-${v}.zip`);
    await pack(src, { signer, out });
    packages.push(out);
  }
});

test(`a server killed with SIGKILL in the middle of a swap, ${RUNS} times in a row, comes back on the last good version every time, its state file intact`, async () => {
  // Killed while verifying, while loading, just after the switch, and at a moment picked by
  // a seeded generator between the drop and three seconds later.
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let expected = '4.0.0';
  const outcomes: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    const version = `4.${i + 1}.0`;
    const { child, url, waitFor } = await serve();
    assert.equal(
      await servedVersion(url),
      expected,
      `run ${i}: serving the last good version after the restart`,
    );
    const how = i % 4;
    const killAt = [
      /"type":"verifying"/,
      /"type":"loading"/,
      new RegExp(
        `"type":"activated","ts":"[^"]+","name":"ppocr","version":"${version.replace(/\./g, '\\.')}"`,
      ),
    ][how];
    const killed = killAt
      ? waitFor(killAt)
      : new Promise<void>((resolve) => setTimeout(resolve, Math.floor(random() * 3000)));
    const drop = join(models, `drop-${i}.zip`);
    await rename(packages[i]!, drop);
    await killed;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    // The package is gone from the folder, so what serves next is what the state file says.
    await rm(drop);
    const text = await readFile(join(home, 'state.json'), 'utf8');
    assert.doesNotThrow(() => JSON.parse(text), `run ${i}: state.json is whole`);
    const state = await new StateStore(join(home, 'state.json')).read();
    const active = state.active.ppocr?.version;
    assert.ok(active === expected || active === version, `run ${i}: state names ${active}`);
    if (how === 2) assert.equal(active, version, 'killed after the switch: the switch was persisted');
    outcomes.push(
      `${['verifying', 'loading', 'activated', 'random'][how]}:${active === version ? 'new' : 'old'}`,
    );
    expected = active!;
  }
  const { child, url } = await serve();
  try {
    assert.equal(await servedVersion(url), expected);
  } finally {
    child.kill('SIGTERM');
  }
  console.log(`crash: ${RUNS} kills, state after each: ${outcomes.join(' ')}`);
});
