import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Fastify from 'fastify';
import pino from 'pino';
import { ERROR_CODES, HotocrError } from '../errors.js';
import { errorHandler, STATUS } from './errors.js';

test('docs/ERRORS.md has a row for every code, with the status the server answers it with', () => {
  const doc = readFileSync(new URL('../../../docs/ERRORS.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `([A-Z0-9_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
  const documented = [...rows.keys()].sort();
  assert.deepEqual(documented, [...ERROR_CODES].sort(), 'the codes documented are the codes there are');
  for (const code of ERROR_CODES) assert.equal(rows.get(code), STATUS[code], `${code}'s status`);
});

test('load shedding is not logged as a failure: OVERLOADED and NOT_READY stay out of the error log', async () => {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const app = Fastify({ loggerInstance: pino({ level: 'info' }, sink) });
  app.setErrorHandler(errorHandler);
  for (const code of ['OVERLOADED', 'NOT_READY', 'INFERENCE_FAILED'] as const)
    app.get(`/${code}`, async () => {
      throw new HotocrError(code, `${code} for the test`);
    });
  for (const code of ['OVERLOADED', 'NOT_READY', 'INFERENCE_FAILED']) {
    const res = await app.inject({ url: `/${code}` });
    assert.equal(res.json().error.code, code);
  }
  await app.close();
  const failures = lines.filter((l) => l.level >= 50).map((l) => l.msg);
  // A fault of the server's is an error; a refusal by design is in the request log and the metrics.
  assert.deepEqual(failures, ['request failed']);
});
