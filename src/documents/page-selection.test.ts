import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HotocrError } from '../errors.js';
import { parsePageSelection, selectPages } from './page-selection.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error instanceof HotocrError ? error.code : 'not a HotocrError';
  }
  return 'no error';
};

test('a selection picks pages in ascending order, each once, open ranges running to the last', () => {
  assert.deepEqual(selectPages(parsePageSelection('1-3,7'), 10), [1, 2, 3, 7]);
  assert.deepEqual(selectPages(parsePageSelection('7, 2-3 ,2'), 10), [2, 3, 7]);
  assert.deepEqual(selectPages(parsePageSelection('8-'), 10), [8, 9, 10]);
  assert.deepEqual(selectPages(undefined, 3), [1, 2, 3]);
});

test('a malformed selection, or one past the last page, is PAGES_INVALID', () => {
  for (const bad of ['', '0', '3-1', 'a', '1-2-3', '1,,2', '-4', '1.5'])
    assert.equal(
      code(() => parsePageSelection(bad)),
      'PAGES_INVALID',
      bad,
    );
  assert.equal(
    code(() => selectPages(parsePageSelection('2-4'), 3)),
    'PAGES_INVALID',
  );
  assert.equal(
    code(() => selectPages(parsePageSelection('4-'), 3)),
    'PAGES_INVALID',
  );
});
