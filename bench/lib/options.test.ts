import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { type OptionSpec, parseOptions } from './options.js';

const SPEC = {
  rounds: { type: 'number', default: 3, min: 1, help: 'rounds' },
  rate: { type: 'number', help: 'requests/s' },
  peer: { type: 'string', help: 'a checkout' },
  'no-wasm': { type: 'flag', help: 'leave it out' },
} as const satisfies Record<string, OptionSpec>;

const parse = (...argv: string[]) => parseOptions(argv, 'node dist/bench/x.js', 'What x measures.', SPEC);

test('bench options: defaults, given values, flags', () => {
  assert.deepEqual(parse(), { values: { rounds: 3, rate: undefined, peer: undefined, 'no-wasm': false } });
  assert.deepEqual(parse('--rounds', '5', '--rate=2.5', '--peer', '../before', '--no-wasm'), {
    values: { rounds: 5, rate: 2.5, peer: '../before', 'no-wasm': true },
  });
});

test('bench options: --help lists every option with its default, and exits 0', () => {
  const r = parse('--rounds', '5', '--help');
  assert.ok('exit' in r && r.exit === 0);
  assert.match(r.output, /^usage: node dist\/bench\/x\.js \[options\]/);
  assert.match(r.output, /What x measures\./);
  assert.match(r.output, /--rounds N +rounds \(default 3\)/);
  assert.match(r.output, /--peer VALUE +a checkout\n/);
  assert.match(r.output, /--no-wasm +leave it out/);
});

test('bench options: an unknown option, a missing value or a bad number is refused with exit 2', () => {
  for (const [argv, why] of [
    [['--round', '5'], /Unknown option '--round'/],
    [['--rounds'], /--rounds/],
    [['--rounds', 'five'], /--rounds takes a number, not "five"/],
    [['--rounds', '0'], /--rounds must be at least 1, not 0/],
    [['extra'], /extra/],
  ] as const) {
    const r = parse(...argv);
    assert.ok('exit' in r && r.exit === 2, `${argv.join(' ')}: ${JSON.stringify(r)}`);
    assert.match(r.output, why);
    assert.match(r.output, /Run it with --help for its options\./);
  }
});

test('a benchmark run with --help prints its options and does nothing else; with a typo, it refuses to start', () => {
  const script = join(import.meta.dirname, '..', 'verify.js');
  const help = spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--runs N +runs of each, medians reported \(default 21\)/);
  assert.doesNotMatch(help.stdout, /bench\/verify:/);
  const typo = spawnSync(process.execPath, [script, '--run', '3'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /Unknown option '--run'/);
  assert.equal(typo.stdout, '');
});
