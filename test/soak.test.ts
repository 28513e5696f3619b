/**
 * The soak, short: bench/soak for a minute (HOTOCR_SOAK_MINUTES for longer) with a swap asked
 * for every 5 s and a bad package every 15 s under steady OCR load. Every request answered, every swap
 * done, every bad package refused, nothing left behind, the server stopping cleanly. The
 * memory and descriptor figures need the long run (docs/RELIABILITY.md).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MINUTES = Number(process.env.HOTOCR_SOAK_MINUTES ?? 1);

test(`a ${MINUTES}-minute soak: no failed request, every swap done, every bad package refused, nothing left`, async () => {
  const script = join(import.meta.dirname, '..', 'bench', 'soak.js');
  const { stdout } = await run(
    process.execPath,
    [
      script,
      '--minutes',
      String(MINUTES),
      '--swap-every',
      '5',
      '--bad-every',
      '15',
      '--clients',
      '2',
      '--json',
    ],
    { maxBuffer: 1 << 24, timeout: (MINUTES * 60 + 180) * 1000 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('SOAK '));
  assert.ok(line, stdout);
  const s = JSON.parse(line!.slice(5)) as Record<string, number>;
  console.log(`soak: ${stdout.trim().split('\n').slice(1, 4).join('; ')}`);
  assert.ok(s.requests! > 0);
  assert.equal(s.failed, 0);
  // Swaps run one after the other, each loading at low priority while the clients keep both
  // cores busy: fewer than one per 5 s under this load, but every one of them completes.
  assert.ok(s.swaps! >= 2 * MINUTES, `${s.swaps} swaps`);
  assert.equal(s.swapsFailed, 0);
  assert.ok(s.bad! >= 2);
  assert.equal(s.badAccepted, 0);
  assert.equal(s.refused, s.bad);
  assert.equal(s.leftUploads, 0);
  assert.equal(s.leftInFolder, 0);
  assert.ok(s.keptMax! <= 11, `${s.keptMax} packages kept`);
  assert.equal(s.exitCode, 0);
});
