import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptimizedGraphs } from './graph-cache.js';

const bytes = (n: number) => new Uint8Array(n);

test('keeps optimized graphs up to its capacity, the least recently used going first', () => {
  const cache = new OptimizedGraphs(100);
  cache.set('a', bytes(40));
  cache.set('b', bytes(40));
  // Using "a" makes "b" the oldest: "c" pushes it out.
  assert.equal(cache.get('a')?.byteLength, 40);
  cache.set('c', bytes(40));
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.get('a')?.byteLength, 40);
  assert.equal(cache.get('c')?.byteLength, 40);
  assert.deepEqual(cache.stats(), { entries: 2, bytes: 80, hits: 3, misses: 1 });
});

test('refuses a graph larger than the whole capacity, and replaces a digest it holds', () => {
  const cache = new OptimizedGraphs(100);
  cache.set('a', bytes(30));
  cache.set('huge', bytes(101));
  assert.equal(cache.get('huge'), undefined);
  assert.equal(cache.get('a')?.byteLength, 30);
  cache.set('a', bytes(60));
  assert.deepEqual(
    { ...cache.stats(), a: cache.get('a')?.byteLength },
    { entries: 1, bytes: 60, hits: 1, misses: 1, a: 60 },
  );
  cache.delete('a');
  assert.equal(cache.stats().bytes, 0);
});
