import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import type { HotocrError } from '../errors.js';
import { STATE_FORMAT, StateStore } from './state-store.js';

const work = tempDir();
const sha = (c: string) => c.repeat(64);

test("reads the format before this one: one highest version per model, the history's packages handled", async () => {
  const path = join(work, 'v1.json');
  const ref = (version: string, c: string) => ({
    version,
    sha256: sha(c),
    package: `/data/packages/${sha(c)}.zip`,
  });
  await writeFile(
    path,
    JSON.stringify({
      format: 1,
      active: { ppocr: ref('1.0.0', 'a') },
      history: { ppocr: [ref('1.0.0', 'a'), ref('1.1.0', 'b')] },
      highest: { folder: { ppocr: '1.1.0' }, upload: { ppocr: '2.0.0', other: '0.3.0' } },
    }),
  );
  const state = await new StateStore(path).read();
  assert.equal(state.format, STATE_FORMAT);
  assert.deepEqual(state.highest, { ppocr: '2.0.0', other: '0.3.0' });
  assert.deepEqual(Object.keys(state.handled).sort(), [sha('a'), sha('b')]);
  assert.equal(state.active.ppocr?.version, '1.0.0');
  assert.deepEqual(state.routing, {});
});

test('refuses a file a newer hotocr wrote, saying so, and a damaged one, saying that', async () => {
  const newer = join(work, 'v9.json');
  await writeFile(newer, JSON.stringify({ format: 9, whatever: true }));
  await assert.rejects(new StateStore(newer).read(), (e: HotocrError) => {
    assert.equal(e.code, 'STATE_INVALID');
    assert.match(e.message, /written by a newer hotocr \(format 9\); this one reads formats 1 to 2/);
    return true;
  });
  const damaged = join(work, 'bad.json');
  await writeFile(damaged, '{"format": 2, "active": ');
  await assert.rejects(new StateStore(damaged).read(), /is damaged/);
});

test('writes what it reads back', async () => {
  const store = new StateStore(join(work, 'rw', 'state.json'));
  const state = await store.read();
  state.highest.ppocr = '3.1.0';
  state.handled[sha('c')] = { at: new Date().toISOString(), outcome: 'refused', code: 'SIGNATURE_INVALID' };
  await store.write(state);
  assert.deepEqual(await store.read(), state);
});
