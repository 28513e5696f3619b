import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FIXTURES, statementFor } from '../../test/helpers/oms.js';
import { PackageRejectedError, type RejectionCode } from '../errors.js';
import { normalizeModelPath, parseOmsStatement } from './oms-statement.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const A = sha('a');
const B = sha('b');

function parse(statement: Record<string, unknown>) {
  return parseOmsStatement(Buffer.from(JSON.stringify(statement)));
}

function refuses(statement: Record<string, unknown> | Buffer, code: RejectionCode, pattern?: RegExp): void {
  assert.throws(
    () => parseOmsStatement(Buffer.isBuffer(statement) ? statement : Buffer.from(JSON.stringify(statement))),
    (error: unknown) => {
      assert.ok(error instanceof PackageRejectedError, String(error));
      assert.equal(error.code, code, error.message);
      if (pattern) assert.match(error.message, pattern);
      return true;
    },
  );
}

/** The statement a fixture's model.sig carries (its DSSE payload, as signed). */
function fixturePayload(folder: string): Buffer {
  const bundle = JSON.parse(readFileSync(join(FIXTURES, folder, 'model.sig'), 'utf8'));
  return Buffer.from(bundle.dsseEnvelope.payload, 'base64');
}

describe('OMS statements the reference writes', () => {
  for (const folder of ['v1.0.0-certificate', 'v1.0.1-elliptic-key', 'v1.0.1-sigstore']) {
    test(`reads the statement of ${folder}: two files, and its subject digest`, () => {
      const statement = parseOmsStatement(fixturePayload(folder));
      assert.equal(statement.name, folder);
      assert.deepEqual([...statement.resources.keys()], ['signme-1', 'signme-2']);
      assert.match(statement.digest, /^[0-9a-f]{64}$/);
      assert.deepEqual(statement.ignorePaths, []);
    });
  }

  test('reads a single file\'s statement, whose one resource is named "."', () => {
    const statement = parseOmsStatement(fixturePayload('v1.0.0-elliptic-key'));
    assert.deepEqual([...statement.resources.keys()], ['.']);
    assert.equal(statement.name, 'signme-1');
  });

  test('computes the subject digest over the digests in the order the statement lists them', () => {
    // The reference signs in sorted order but verifies in the order written: both must hold.
    assert.equal(
      parse(
        statementFor('m', [
          { name: 'b', digest: B },
          { name: 'a', digest: A },
        ]),
      ).digest,
      createHash('sha256')
        .update(Buffer.concat([Buffer.from(B, 'hex'), Buffer.from(A, 'hex')]))
        .digest('hex'),
    );
    const swapped = statementFor(
      'm',
      [
        { name: 'a', digest: A },
        { name: 'b', digest: B },
      ],
      (s) => {
        const resources = (s.predicate as { resources: unknown[] }).resources;
        resources.reverse();
      },
    );
    refuses(swapped, 'OMS_STATEMENT_INVALID', /subject digest/);
  });

  test('reads names as the reference does: "./a//b/" is "a/b", and the model itself is "."', () => {
    assert.equal(normalizeModelPath('./a//b/'), 'a/b');
    assert.equal(normalizeModelPath('./'), '.');
    assert.deepEqual(
      [...parse(statementFor('m', [{ name: './d0//f00', digest: A }])).resources.keys()],
      ['d0/f00'],
    );
  });

  test("keeps the signer's ignore_paths, normalised", () => {
    const statement = parse(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        (s.predicate as { serialization: Record<string, unknown> }).serialization.ignore_paths = [
          'model.sig',
          './.git/',
        ];
      }),
    );
    assert.deepEqual(statement.ignorePaths, ['model.sig', '.git']);
  });

  test('ignores fields a v1.0 verifier must ignore', () => {
    const statement = parse(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        (s.predicate as Record<string, unknown>).model_card = { anything: true };
      }),
    );
    assert.equal(statement.resources.get('a'), A);
  });
});

describe('OMS statements refused', () => {
  test('a model serialized by shards', () => {
    refuses(
      statementFor('m', [{ name: 'a:0:10', digest: A }], (s) => {
        (s.predicate as { serialization: Record<string, unknown> }).serialization = {
          method: 'shards',
          hash_type: 'sha256',
          shard_size: 10,
          allow_symlinks: false,
        };
      }),
      'OMS_UNSUPPORTED',
      /shards/,
    );
  });

  test('files hashed with another algorithm than SHA-256', () => {
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        (s.predicate as { serialization: Record<string, unknown> }).serialization.hash_type = 'blake2';
      }),
      'OMS_UNSUPPORTED',
      /blake2/,
    );
    refuses(statementFor('m', [{ name: 'a', digest: A, algorithm: 'blake3' }]), 'OMS_UNSUPPORTED', /blake3/);
  });

  test('a model_signing 0.2 statement', () => {
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        s.predicateType = 'https://model_signing/Digests/v0.1';
      }),
      'OMS_UNSUPPORTED',
      /0\.2/,
    );
  });

  for (const name of ['../outside', '/etc/passwd', 'a/../../b', 'd0/..']) {
    test(`a resource named ${JSON.stringify(name)}, which leaves the model folder or is absolute`, () => {
      refuses(statementFor('m', [{ name, digest: A }]), 'OMS_STATEMENT_INVALID', /inside the model|absolute/);
    });
  }

  test('a name listed twice, also when written two ways', () => {
    refuses(
      statementFor('m', [
        { name: 'a', digest: A },
        { name: 'a', digest: B },
      ]),
      'OMS_STATEMENT_INVALID',
      /twice/,
    );
    refuses(
      statementFor('m', [
        { name: 'd/a', digest: A },
        { name: './d//a', digest: A },
      ]),
      'OMS_STATEMENT_INVALID',
      /twice/,
    );
  });

  test('a subject digest that is not the digest of the resources', () => {
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        (s.subject as { digest: { sha256: string } }[])[0]!.digest.sha256 = B;
      }),
      'OMS_STATEMENT_INVALID',
      /subject digest/,
    );
  });

  test('another statement type, predicate type, or more than one subject', () => {
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        s._type = 'https://in-toto.io/Statement/v0.1';
      }),
      'OMS_STATEMENT_INVALID',
      /_type/,
    );
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        s.predicateType = 'https://slsa.dev/provenance/v1';
      }),
      'OMS_STATEMENT_INVALID',
      /predicateType/,
    );
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        (s.subject as unknown[]).push({ name: 'other', digest: { sha256: A } });
      }),
      'OMS_STATEMENT_INVALID',
      /one subject/,
    );
  });

  test('no resource, a digest that is not 64 hex digits, a resource without a name', () => {
    refuses(statementFor('m', []), 'OMS_STATEMENT_INVALID', /no file/);
    refuses(statementFor('m', [{ name: 'a', digest: A.slice(0, 62) }]), 'OMS_STATEMENT_INVALID', /64/);
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        delete (
          (s.predicate as { resources: Record<string, unknown>[] }).resources[0] as Record<string, unknown>
        ).name;
      }),
      'OMS_STATEMENT_INVALID',
      /name/,
    );
  });

  test('a payload that is not JSON, and ignore paths that leave the model', () => {
    refuses(Buffer.from('{"_type": '), 'OMS_STATEMENT_INVALID', /JSON/);
    refuses(
      statementFor('m', [{ name: 'a', digest: A }], (s) => {
        (s.predicate as { serialization: Record<string, unknown> }).serialization.ignore_paths = ['../x'];
      }),
      'OMS_STATEMENT_INVALID',
      /ignore path/,
    );
  });
});
