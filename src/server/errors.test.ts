import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../errors.js';
import { STATUS } from './errors.js';

test('docs/ERRORS.md has a row for every code, with the status the server answers it with', () => {
  const doc = readFileSync(new URL('../../../docs/ERRORS.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `([A-Z0-9_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
  const documented = [...rows.keys()].sort();
  assert.deepEqual(documented, [...ERROR_CODES].sort(), 'the codes documented are the codes there are');
  for (const code of ERROR_CODES) assert.equal(rows.get(code), STATUS[code], `${code}'s status`);
});
