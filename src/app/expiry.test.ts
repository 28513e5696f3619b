import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Registry } from '../registry/index.js';
import { type Expiring, ExpiryWatch, expiring } from './expiry.js';

const DAY = 86_400_000;

test('warns from 14 days before an expiry, once a day, until and after it', () => {
  let now = Date.parse('2026-12-01T00:00:00Z');
  const items: Expiring[] = [
    { what: 'the signer certificate CN=release of ppocr 4.1.0', at: new Date(now + 20 * DAY) },
    { what: 'the trusted key abc (old.pub)', at: new Date(now + 15 * DAY) },
  ];
  const warned: string[] = [];
  const watch = new ExpiryWatch({
    items: () => items,
    warn: (item, days) => warned.push(`${item.what}: ${days}`),
    now: () => now,
  });
  watch.look();
  assert.deepEqual(warned, [], 'nothing within 14 days yet');
  now += 1 * DAY + 1000;
  watch.look();
  assert.deepEqual(warned, ['the trusted key abc (old.pub): 13']);
  now += 3_600_000; // an hour later: not again
  watch.look();
  assert.equal(warned.length, 1);
  now += DAY; // a day later: again
  watch.look();
  assert.equal(warned.at(-1), 'the trusted key abc (old.pub): 12');
  now += 6 * DAY; // the certificate enters its window too
  watch.look();
  assert.deepEqual(warned.slice(-2), [
    'the signer certificate CN=release of ppocr 4.1.0: 11',
    'the trusted key abc (old.pub): 6',
  ]);
  now += 10 * DAY; // the key has expired: still said, each day
  watch.look();
  assert.match(warned.at(-1)!, /old\.pub\): -\d+/);
});

test('counts the certificate of an OMS package signed with a certificate chain, as that of a hotocr package', () => {
  const notAfter = '2027-01-01T00:00:00.000Z';
  const version = (kind: string, state = 'active') => ({
    name: 'ppocr',
    version: `${kind}-${state}`,
    state,
    signer: { kind, subject: `CN=${kind}`, notAfter, fingerprint: 'ab', root: 'CN=root', algorithm: 'x' },
  });
  const registry = {
    versions: () => [
      version('certificate'),
      version('oms-certificate'),
      version('oms-certificate', 'released'),
      version('oms-key'),
    ],
  } as unknown as Registry;
  assert.deepEqual(
    expiring(registry, []).map((e) => e.what),
    [
      'the signer certificate CN=certificate of ppocr certificate-active',
      'the signer certificate CN=oms-certificate of ppocr oms-certificate-active',
    ],
  );
});
