#!/usr/bin/env node
// Runs the compiled test files (dist/**/*.test.js) with node's own test runner, after checking
// (as root: installing) the Debian packages they need (scripts/system-packages.mjs).
// Node 20's `--test` does not expand globs, so the files are found here.
//
// Usage: node scripts/run-tests.mjs [--lane unit] [substring ...]
//   --lane unit   only the files that need nothing but the base packages: no real model, no
//                 root, browser, registry, SoftHSM or kubectl (`// test-needs:` absent)
//   substring     only files whose path contains one of them
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureNeeds, needsOf } from './system-packages.mjs';

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const laneAt = args.indexOf('--lane');
const lane = laneAt >= 0 ? args[laneAt + 1] : 'all';
if (lane !== 'unit' && lane !== 'all') {
  console.error(`--lane takes unit or all, not ${JSON.stringify(lane)}`);
  process.exit(2);
}
const filters = laneAt >= 0 ? args.filter((_, i) => i !== laneAt && i !== laneAt + 1) : args;
const files = ['dist/src', 'dist/test', 'dist/bench']
  .flatMap((dir) => {
    try {
      return find(dir);
    } catch {
      return [];
    }
  })
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .map((file) => ({ file, needs: needsOf(readFileSync(file, 'utf8')) }))
  .filter(({ needs }) => lane === 'all' || needs.length === 1)
  .sort((a, b) => a.file.localeCompare(b.file));

if (files.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}

ensureNeeds([...new Set(files.flatMap((f) => f.needs))]);

const result = spawnSync(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    `--test-concurrency=${process.env.HOTOCR_TEST_CONCURRENCY ?? 2}`,
    ...files.map((f) => f.file),
  ],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
