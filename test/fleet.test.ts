// test-needs: model, registry
/**
 * The fleet against a real OCI registry (Debian's docker-registry, CNCF Distribution)
 * started on loopback: push and pull, three replicas following one repository with the
 * registry's notifications pointed at them, a push reaching all three under load, a
 * tampered artifact refused by all three, the registry stopped and started again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { OciClient, parseReference } from '../src/oci/index.js';
import { Fleet, pushEvent } from './helpers/fleet.js';
import { renderText } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const work = tempDir();
let fleet: Fleet;
let page: Buffer;

before(async () => {
  page = await renderText(['Fleet 3']);
  fleet = await Fleet.start(work, 3);
});

after(async () => {
  await fleet.close();
});

describe('packages in an OCI registry', () => {
  test('push and pull round-trip byte for byte; the artifact has its own media type and annotations', async () => {
    const path = await fleet.packageOf('3.9.0');
    const digest = await fleet.push(path, 'roundtrip');
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const out = join(work, 'pulled.zip');
    const { stdout } = await run(process.execPath, [
      CLI,
      'pull',
      `${fleet.repository}@${digest}`,
      '--out',
      out,
    ]);
    assert.equal(stdout.trim(), digest);
    assert.ok((await readFile(out)).equals(await readFile(path)));
    const { manifest } = await new OciClient().manifest(parseReference(`${fleet.repository}:roundtrip`));
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0]!.mediaType, 'application/vnd.hotocr.package.v1+zip');
    assert.equal(manifest.annotations?.['dev.hotocr.package.version'], '3.9.0');
    // A reference without a registry host, and one to nothing, are clear errors.
    const bad = await run(process.execPath, [CLI, 'pull', 'models/ppocr:1.0.0', '--out', out]).catch(
      (e) => e,
    );
    assert.match(bad.stderr, /REFERENCE_INVALID/);
    const missing = await run(process.execPath, [
      CLI,
      'pull',
      `${fleet.repository}:9.9.9`,
      '--out',
      out,
    ]).catch((e) => e);
    assert.match(missing.stderr, /ARTIFACT_NOT_FOUND/);
  });

  test('a push reaches all three replicas under load with no failed request (one notified, two told by it); the fleet view agrees', async () => {
    let stop = false;
    const failures: string[] = [];
    let requests = 0;
    const load = async (i: number) => {
      while (!stop) {
        const res = await fetch(`${fleet.replicas[i]!.url}/v1/ocr`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: page,
        }).catch((e: Error) => e);
        requests++;
        if (res instanceof Error) failures.push(`replica ${i}: ${res.message}`);
        else {
          await res.arrayBuffer();
          if (res.status !== 200) failures.push(`replica ${i}: ${res.status}`);
        }
      }
    };
    const clients = [0, 1, 2].map(load);
    let ms: number;
    try {
      await fleet.push(await fleet.packageOf('4.1.0'), '4.1.0');
      ms = await fleet.all((s) => s.models.ppocr?.version === '4.1.0', 'serves 4.1.0');
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    console.log(
      `fleet: a push reached all 3 replicas in ${Math.round(ms)} ms, under load (${requests} requests, ${failures.length} failed)`,
    );
    assert.deepEqual(failures, []);
    const view = (await (await fetch(`${fleet.replicas[0]!.url}/v1/fleet`)).json()) as {
      agree: boolean;
      replicas: { reachable: boolean }[];
      models: Record<
        string,
        {
          agree: boolean;
          newest: string;
          variants: { version: string; replicas: number }[];
          lagging: unknown[];
        }
      >;
    };
    assert.equal(view.replicas.length, 3);
    assert.equal(view.agree, true);
    assert.deepEqual(
      view.models.ppocr?.variants.map((m) => [m.version, m.replicas]),
      [['4.1.0', 3]],
    );
    assert.equal(view.models.ppocr?.agree, true);
    assert.equal(view.models.ppocr?.newest, '4.1.0');
    assert.deepEqual(view.models.ppocr?.lagging, []);
  });

  test("an idle fleet whose registry notifies every pull asks it for no manifest: a replica's look is not news", async () => {
    // The registry notifies pulls too (no ignore in its configuration): the worst case.
    await new Promise((r) => setTimeout(r, 2000)); // the looks the last push caused end
    const before = fleet.manifestRequests.count;
    await new Promise((r) => setTimeout(r, 30_000));
    const during = fleet.manifestRequests.count - before;
    console.log(`fleet: ${during} manifest requests from 3 idle replicas in 30 s`);
    assert.ok(during <= 3, `${during} manifest requests in 30 s from an idle fleet (polling once a day)`);
  });

  test('a tampered artifact is refused by all three with its code; they keep serving what they had', async () => {
    const path = await fleet.packageOf('4.2.0');
    const bytes = await readFile(path);
    const at = bytes.indexOf(Buffer.from('rec.onnx')) + 4000;
    bytes[at] = bytes[at]! ^ 0xff;
    await writeFile(path, bytes);
    const digest = await fleet.push(path, '4.2.0');
    await fleet.all((s) => s.registry?.lastRefused?.digest === digest, 'refused the tampered artifact');
    for (let i = 0; i < 3; i++) {
      const s = await fleet.self(i);
      assert.equal(s.registry?.lastRefused?.code, 'CHECKSUM_MISMATCH');
      assert.equal(s.models.ppocr?.version, '4.1.0');
    }
  });

  test('a refusal stops being news once a later artifact is accepted', async () => {
    await fleet.push(await fleet.packageOf('4.2.2'), '4.2.2');
    await fleet.all((s) => s.models.ppocr?.version === '4.2.2', 'serves 4.2.2');
    for (let i = 0; i < 3; i++) assert.equal((await fleet.self(i)).registry?.lastRefused, undefined);
  });

  test('the registry stopped: replicas keep serving; started again: they catch up with the next push', async () => {
    await fleet.stopRegistry();
    // Notified of a push, every replica asks the registry and finds it down.
    const poke = await fetch(`${fleet.replicas[0]!.url}/v1/hooks/registry`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${fleet.secret}`,
        'content-type': 'application/vnd.docker.distribution.events.v1+json',
      },
      body: pushEvent('4.2.1'),
    });
    assert.equal(poke.status, 202);
    assert.equal(((await poke.json()) as { looking: boolean }).looking, true);
    await fleet.all(
      (s) => s.registry?.lastError?.code === 'REGISTRY_UNREACHABLE',
      'noticed the registry is down',
    );
    for (const r of fleet.replicas) {
      const res = await fetch(`${r.url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: page,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-model-version'), 'ppocr/4.2.2');
    }
    await fleet.startRegistry();
    await fleet.push(await fleet.packageOf('4.3.0'), '4.3.0');
    const ms = await fleet.all((s) => s.models.ppocr?.version === '4.3.0', 'caught up to 4.3.0');
    console.log(`fleet: after the registry came back, a push reached all 3 replicas in ${Math.round(ms)} ms`);
  });

  test('the webhook needs the shared secret', async () => {
    const url = `${fleet.replicas[0]!.url}/v1/hooks/registry`;
    const type = { 'content-type': 'application/vnd.docker.distribution.events.v1+json' };
    assert.equal((await fetch(url, { method: 'POST', headers: type, body: '{}' })).status, 401);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { ...type, authorization: 'Bearer wrong-secret-0123456789' },
      body: '{}',
    });
    assert.equal(wrong.status, 403);
    const right = await fetch(url, {
      method: 'POST',
      headers: { ...type, authorization: `Bearer ${fleet.secret}` },
      body: '{"events":[]}',
    });
    assert.equal(right.status, 202);
    assert.deepEqual(await right.json(), { accepted: true, looking: false });
  });
});
