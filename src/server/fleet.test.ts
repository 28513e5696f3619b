import assert from 'node:assert/strict';
import { test } from 'node:test';
import { announcesPush } from './fleet.js';

const follows = (repository: string) => repository === 'models/ppocr';
const envelope = (...events: unknown[]) => ({ events });
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

test("a registry's notification is news only when it holds a manifest pushed to the followed repository", () => {
  const push = { action: 'push', target: { repository: 'models/ppocr', mediaType: MANIFEST, tag: '4.1.0' } };
  assert.equal(announcesPush(envelope(push), follows), true);
  assert.equal(
    announcesPush(envelope({ ...push, target: { ...push.target, tag: undefined } }), follows),
    true,
  );
  // A pull (every replica's own look makes one), a blob pushed before its manifest, another repository.
  assert.equal(announcesPush(envelope({ ...push, action: 'pull' }), follows), false);
  assert.equal(
    announcesPush(
      envelope({
        action: 'push',
        target: { repository: 'models/ppocr', mediaType: 'application/octet-stream' },
      }),
      follows,
    ),
    false,
  );
  assert.equal(
    announcesPush(envelope({ ...push, target: { ...push.target, repository: 'models/other' } }), follows),
    false,
  );
  // Whatever else arrives is not news either.
  for (const body of [
    undefined,
    null,
    'push',
    {},
    { events: 'push' },
    { events: [null, 7, { action: 'push' }] },
  ])
    assert.equal(announcesPush(body, follows), false, JSON.stringify(body));
  assert.equal(announcesPush(envelope({ action: 'pull', target: push.target }, push), follows), true);
});
