import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scorePage, spaced } from './score.js';

test('the spaced rule: runs of whitespace are one space, none at the ends, none beside a CJK character', () => {
  assert.equal(spaced('  Price \t Total\n37337 '), 'Price Total 37337');
  assert.equal(spaced('订单号 A20261125 已发货'), '订单号A20261125已发货');
  assert.equal(spaced('总金额：1280 元'), '总金额：1280元');
  assert.equal(spaced('iPhone 手机壳 两件 59 元'), 'iPhone手机壳两件59元');
});

test('a line read as several boxes costs nothing with spaces; a lost or wrong space costs one each', () => {
  const truth = ['Release Quantity Version', '价格 59 元'];
  const split = scorePage(truth, ['Release', 'Quantity Version', '价格59元']);
  assert.deepEqual([split.errors, split.spacedErrors, split.exact, split.exactSpaced], [0, 0, 1, 1]);
  const joined = scorePage(truth, ['ReleaseQuantity·Version', '价格 59 元']);
  assert.equal(joined.spacedErrors, 2);
  assert.equal(joined.errors, 1);
  assert.equal(joined.chars, 'ReleaseQuantityVersion价格59元'.length);
  assert.equal(joined.spacedChars, 'Release Quantity Version价格59元'.length);
});
