import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { followedRepositories } from './serve.js';

describe('--registry: a repository per model', () => {
  test("names a repository's model by NAME= or by its last path segment", () => {
    const followed = followedRepositories([
      'registry.example.com/models/zh',
      'latin=registry.example.com/ocr/latin-v2:stable',
      'localhost:5000/en@sha256:' + 'a'.repeat(64),
    ]);
    assert.deepEqual(
      followed.map((f) => [f.name, f.reference.repository, f.reference.tag ?? null]),
      [
        ['zh', 'models/zh', null],
        ['latin', 'ocr/latin-v2', 'stable'],
        ['en', 'en', null],
      ],
    );
  });

  test('refuses two repositories for one model, one repository twice, and a name that is not one', () => {
    const refused = (entries: string[], pattern: RegExp) =>
      assert.throws(
        () => followedRepositories(entries),
        (e: Error & { code?: string }) => e.code === 'SETTING_INVALID' && pattern.test(e.message),
      );
    refused(['r.example.com/a/zh', 'r.example.com/b/zh'], /two repositories follow model zh/);
    refused(['zh=r.example.com/models/x', 'en=r.example.com/models/x:1.0.0'], /followed twice/);
    refused(['Big_Name=r.example.com/models/x'], /not a model name/);
    refused([`r.example.com/models/${'x'.repeat(70)}`], /not a model name/);
    assert.throws(() => followedRepositories(['models/zh']), /REFERENCE_INVALID|not a registry reference/);
  });
});
