// test-needs: model
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import type { HotocrError } from '../src/errors.js';
import { type LoaderPackage, Loaders, loadOcrModel } from '../src/loaders/index.js';
import { decodeImage } from '../src/ocr/index.js';
import { BUNDLED_NAME, bundledManifest, keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { verifiedBundled } from './helpers/bundled.js';
import { renderText } from './helpers/images.js';
import { manifest, sourceDir } from './helpers/packages.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

const work = tempDir();
const TOKEN = 'test-admin-token-0123456789abcdef';

interface ErrorBody {
  error: { code: string; message: string };
}
interface OcrBody {
  model: { name: string; version: string };
  lines: { text: string; box: [number, number][] }[];
}
interface ModelsBody {
  models: {
    name: string;
    active: string | null;
    versions: {
      version: string;
      state: string;
      loader?: Record<string, unknown>;
      failure?: { code: string };
    }[];
  }[];
}

/** What the echo plugin saw, published by the plugin itself on globalThis. */
interface EchoCalls {
  loads: { keys: string[]; files: string[]; runtime: string; recSha: string; recDigest?: string }[];
  releases: number;
  /** What its models' fault() answers; 'throw' makes it throw. */
  fault?: string;
}

/**
 * Plugins written by the test: plain ES modules, as an operator's would be. `echo` answers
 * every image with one line naming its version and a hash of the recognition graph it was
 * given; `explode` throws while loading; `badshape` returns something that is not a result.
 */
const PLUGINS: Record<string, string> = {
  'echo.mjs': `
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
const calls = (globalThis.__hotocrEcho = { loads: [], releases: 0 });
export default {
  name: 'test-echo',
  supports: (m) => m.runtime === 'test-echo',
  metadata: (m) => ({ runtime: 'echo', backend: 'none', graphs: Object.keys(m.graphs).length }),
  async load(pkg) {
    const rec = pkg.files.get(pkg.manifest.graphs.rec);
    const recSha = createHash('sha256').update(rec).digest('hex');
    calls.loads.push({ keys: Object.keys(pkg), files: [...pkg.files.keys()].sort(), runtime: pkg.manifest.runtime, recSha, recDigest: pkg.digests?.get(pkg.manifest.graphs.rec) });
    const text = 'echo ' + pkg.manifest.version + ' ' + recSha.slice(0, 8);
    return {
      async read(image) {
        const w = image.width, h = image.height;
        return { lines: [{ text, score: 1, box: [[0, 0], [w, 0], [w, h], [0, h]] }] };
      },
      fault() {
        if (calls.fault === 'throw') throw new Error('the device went away');
        return calls.fault;
      },
      async release() { calls.releases++; },
    };
  },
};
`,
  'explode.mjs': `
export default () => ({
  name: 'test-explode',
  supports: (m) => m.runtime === 'test-explode',
  metadata: () => ({}),
  async load() { throw new Error('no accelerator on this machine'); },
});
`,
  'badshape.mjs': `
export const loader = {
  name: 'test-badshape',
  supports: (m) => m.runtime === 'test-badshape',
  metadata: () => ({}),
  async load() { return { read: async () => ({ lines: 'not lines' }), release: async () => {} }; },
};
`,
  'unready.mjs': `
globalThis.__hotocrUnready = { ready: 0, releases: 0 };
export default {
  name: 'test-unready',
  supports: (m) => m.runtime === 'test-unready',
  metadata: () => ({}),
  async load() {
    return {
      read: async () => ({ lines: [{ text: 'warm', score: 1, box: [[0, 0], [1, 0], [1, 1], [0, 1]] }] }),
      async ready() { globalThis.__hotocrUnready.ready++; throw new Error('the device did not come up'); },
      async release() { globalThis.__hotocrUnready.releases++; },
    };
  },
};
`,
  'holding.mjs': `
const calls = (globalThis.__hotocrHolding = { asked: [], loads: [] });
export default {
  name: 'test-holding',
  supports: (m) => m.runtime === 'test-holding',
  metadata: () => ({}),
  // Says it holds every graph already, as a loader with its own cache would.
  holds(manifest, sha256) { calls.asked.push(manifest.runtime + ' ' + sha256); return true; },
  async load(pkg) {
    calls.loads.push({ files: [...pkg.files.keys()].sort(), digests: [...pkg.digests.keys()].sort() });
    return {
      read: async () => ({ lines: [{ text: 'held', score: 1, box: [[0, 0], [1, 0], [1, 1], [0, 1]] }] }),
      async release() {},
    };
  },
};
`,
  'hang.mjs': `
globalThis.__hotocrHangReleased = 0;
export default {
  name: 'test-hang',
  supports: () => true,
  metadata: () => ({}),
  // Comes back only when the test says so (globalThis.__hotocrHangComeBack()).
  load: () => new Promise((resolve) => {
    globalThis.__hotocrHangComeBack = () => resolve({
      read: async () => ({ lines: [] }),
      release: async () => { globalThis.__hotocrHangReleased++; },
    });
  }),
};
`,
  'noexport.mjs': 'export const nothing = 1;\n',
  'noname.mjs': 'export default { supports: () => true, load: async () => ({}), metadata: () => ({}) };\n',
  'clash.mjs': `export default { name: 'onnxruntime-node', supports: () => false, load: async () => ({}), metadata: () => ({}) };\n`,
};

const plugin = (file: string) => join(work, 'plugins', file);
const echoCalls = () => (globalThis as unknown as { __hotocrEcho: EchoCalls }).__hotocrEcho;

before(async () => {
  await sourceDir(join(work, 'plugins'), manifest());
  for (const [file, text] of Object.entries(PLUGINS)) await writeFile(plugin(file), text);
});

/** The bundled model's files under another version and runtime, signed with the server's development key. */
async function bundledPackage(home: string, version: string, runtime?: string): Promise<string> {
  const src = await writeBundledSource(join(work, `src-${version}-${runtime ?? 'default'}`), version);
  if (runtime)
    await writeFile(
      join(src, 'config.json'),
      `${JSON.stringify({ ...bundledManifest(version), runtime }, null, 2)}\n`,
    );
  const out = join(work, `ppocr-${version}-${runtime ?? 'default'}.zip`);
  await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out });
  return out;
}

/** A small package for a plugin runtime: stand-in graphs, which only the plugin ever sees. */
async function pluginPackage(home: string, version: string, runtime: string): Promise<string> {
  const src = await sourceDir(
    join(work, `plugin-src-${version}`),
    manifest({ name: BUNDLED_NAME, version, runtime }),
  );
  const out = join(work, `plugin-${version}.zip`);
  await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out });
  return out;
}

async function serve(home: string, extra: Record<string, unknown> = {}): Promise<RunningServer> {
  await writeFile(join(work, 'token'), `${TOKEN}\n`);
  return startServer(
    readServeConfig(
      { port: '0', host: '127.0.0.1', data: home, adminTokenFile: join(work, 'token'), ...extra },
      {},
    ),
    pino({ level: 'silent' }),
  );
}

function upload(server: RunningServer, path: string): Promise<Response> {
  return readFile(path).then((body) =>
    fetch(`${server.url}/v1/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
      body,
    }),
  );
}

async function ocr(server: RunningServer, page: Buffer): Promise<{ status: number; body: OcrBody }> {
  const res = await fetch(`${server.url}/v1/ocr`, {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: page,
  });
  return { status: res.status, body: (await res.json()) as OcrBody };
}

async function models(server: RunningServer): Promise<ModelsBody['models'][number]> {
  const body = (await (await fetch(`${server.url}/v1/models`)).json()) as ModelsBody;
  return body.models.find((m) => m.name === BUNDLED_NAME)!;
}

describe('loader plugins', () => {
  const home = join(work, 'plugins-home');
  let server: RunningServer;
  let page: Buffer;
  before(async () => {
    server = await serve(home, {
      loader: [
        plugin('echo.mjs'),
        plugin('explode.mjs'),
        plugin('badshape.mjs'),
        plugin('unready.mjs'),
        plugin('holding.mjs'),
      ],
    });
    page = await renderText(['Plugins 42']);
  });
  after(() => server?.close());

  test('the built-in loader runs a package that names no runtime; the plugins were asked and declined', async () => {
    const m = await models(server);
    const active = m.versions.find((v) => v.version === m.active)!;
    assert.equal(active.loader?.name, 'onnxruntime-node');
    assert.equal(active.loader?.backend, 'cpu');
    assert.equal((await ocr(server, page)).body.lines[0]?.text, 'Plugins 42');
  });

  test('a plugin is chosen by supports(), sees verified bytes and no path, and serves', async () => {
    const path = await pluginPackage(home, '7.0.0', 'test-echo');
    const res = await upload(server, path);
    assert.equal(res.status, 201, await res.clone().text());
    const load = echoCalls().loads.at(-1)!;
    // No path; the server says it reads the bytes no more once they are loaded, and gives
    // the digests they were verified with.
    assert.deepEqual(load.keys.sort(), ['digests', 'files', 'filesMovable', 'manifest', 'sha256']);
    assert.deepEqual(load.files, ['cls.onnx', 'config.json', 'det.onnx', 'keys.txt', 'rec.onnx']);
    assert.equal(load.runtime, 'test-echo');
    const recSha = createHash('sha256')
      .update(await readFile(join(work, 'plugin-src-7.0.0', 'rec.onnx')))
      .digest('hex');
    assert.equal(load.recSha, recSha);
    assert.equal(load.recDigest, recSha);

    const { status, body } = await ocr(server, page);
    assert.equal(status, 200);
    assert.deepEqual(body.model, { name: BUNDLED_NAME, version: '7.0.0' });
    assert.equal(body.lines[0]?.text, `echo 7.0.0 ${recSha.slice(0, 8)}`);
    const m = await models(server);
    const v = m.versions.find((x) => x.version === '7.0.0')!;
    assert.deepEqual(v.loader, { name: 'test-echo', runtime: 'echo', backend: 'none', graphs: 3 });

    // Its fault() takes the server out of readiness, and back once it has none.
    const readiness = async () => {
      const res = await fetch(`${server.url}/readyz`);
      return { status: res.status, body: (await res.json()) as Partial<ErrorBody> };
    };
    assert.equal((await readiness()).status, 200);
    echoCalls().fault = 'the accelerator was reset';
    assert.deepEqual(await readiness(), {
      status: 503,
      body: {
        error: {
          code: 'NOT_READY',
          message: `${BUNDLED_NAME} 7.0.0 is active but cannot read: the accelerator was reset`,
        },
      },
    });
    echoCalls().fault = 'throw';
    const threw = await readiness();
    assert.equal(threw.status, 503);
    assert.match(
      threw.body.error?.message ?? '',
      /cannot read: The loader "test-echo" could not tell whether the model can read: the device went away$/,
    );
    echoCalls().fault = undefined;
    assert.equal((await readiness()).status, 200);

    // Rolling back releases the plugin's model once it drains.
    const back = await fetch(`${server.url}/v1/models/${BUNDLED_NAME}/rollback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(back.status, 200);
    await until(() => echoCalls().releases === 1, "the plugin's model released");
    assert.equal((await ocr(server, page)).body.lines[0]?.text, 'Plugins 42');
  });

  /**
   * Uploads a plugin package that must be refused (422) with `code`; checks that the active
   * version is unchanged and still reads the page. Returns the refusal's message.
   */
  const refused = async (version: string, runtime: string, code: string): Promise<string> => {
    const before = (await models(server)).active;
    const res = await upload(server, await pluginPackage(home, version, runtime));
    assert.equal(res.status, 422);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, code);
    assert.equal((await models(server)).active, before);
    const { status, body: read } = await ocr(server, page);
    assert.equal(status, 200);
    assert.equal(read.lines[0]?.text, 'Plugins 42');
    return body.error.message;
  };
  const failureOf = async (version: string) =>
    (await models(server)).versions.find((v) => v.version === version)?.failure?.code;

  test('a package no loader supports is refused with LOADER_NOT_FOUND; the active version keeps serving', async () => {
    const message = await refused('8.0.0', 'tensorrt', 'LOADER_NOT_FOUND');
    assert.match(message, /runtime "tensorrt"/);
    assert.match(
      message,
      /test-echo, test-explode, test-badshape, test-unready, test-holding, onnxruntime-node, onnxruntime-wasm/,
    );
    assert.match(message, /--loader/);
  });

  test('a plugin that throws while loading fails its version with LOAD_FAILED; the active version keeps serving', async () => {
    const message = await refused('9.0.0', 'test-explode', 'LOAD_FAILED');
    assert.match(message, /"test-explode".*no accelerator on this machine/);
    assert.equal(await failureOf('9.0.0'), 'LOAD_FAILED');
  });

  test('a plugin whose model answers with the wrong shape never goes live: the warm-up refuses it', async () => {
    const message = await refused('9.1.0', 'test-badshape', 'WARMUP_FAILED');
    assert.match(message, /"test-badshape" returned a result of the wrong shape/);
  });

  test('a model whose ready() throws after its warm-up never goes live and is released', async () => {
    const message = await refused('9.2.0', 'test-unready', 'LOAD_FAILED');
    assert.match(message, /"test-unready" failed to make the model ready: the device did not come up/);
    const calls = (globalThis as unknown as { __hotocrUnready: { ready: number; releases: number } })
      .__hotocrUnready;
    assert.deepEqual(calls, { ready: 1, releases: 1 });
    assert.equal(await failureOf('9.2.0'), 'LOAD_FAILED');
  });

  test('graphs a plugin says it holds are verified but not kept: its load gets their digests, not their bytes', async () => {
    const path = await pluginPackage(home, '9.3.0', 'test-holding');
    const res = await upload(server, path);
    assert.equal(res.status, 201, await res.clone().text());
    const calls = (
      globalThis as unknown as {
        __hotocrHolding: { asked: string[]; loads: { files: string[]; digests: string[] }[] };
      }
    ).__hotocrHolding;
    assert.deepEqual(calls.loads, [
      {
        files: ['config.json', 'keys.txt'],
        digests: ['cls.onnx', 'config.json', 'det.onnx', 'keys.txt', 'rec.onnx'],
      },
    ]);
    const src = join(work, 'plugin-src-9.3.0');
    const digest = async (name: string) =>
      createHash('sha256')
        .update(await readFile(join(src, name)))
        .digest('hex');
    // Asked once per graph, with the effective runtime and the signed digest; never for the dictionary.
    assert.deepEqual(
      calls.asked.sort(),
      (await Promise.all(['cls.onnx', 'det.onnx', 'rec.onnx'].map(digest)))
        .map((d) => `test-holding ${d}`)
        .sort(),
    );
  });
});

describe('loader set', () => {
  const fake: LoaderPackage = {
    manifest: manifest({ runtime: 'anything' }) as unknown as LoaderPackage['manifest'],
    sha256: '0'.repeat(64),
    files: new Map(),
  };

  test('a plugin that cannot be used stops the start with LOADER_INVALID and says why', async () => {
    const cases: [string, RegExp][] = [
      [plugin('missing.mjs'), /cannot be imported/],
      [plugin('noexport.mjs'), /exports no loader/],
      [plugin('noname.mjs'), /has no valid name/],
      [plugin('clash.mjs'), /"onnxruntime-node", which another loader already has/],
      ['hotocr-loader-that-is-not-installed', /cannot be imported/],
    ];
    for (const [spec, why] of cases) {
      await assert.rejects(Loaders.create({ plugins: [spec] }), (e: HotocrError) => {
        assert.equal(e.code, 'LOADER_INVALID', spec);
        assert.match(e.message, why);
        return true;
      });
    }
    await assert.rejects(
      serve(join(work, 'invalid-home'), { loader: [plugin('noexport.mjs')] }),
      /exports no loader/,
    );
    assert.throws(() => readServeConfig({ runtime: 'ONNX runtime' }, {}), /--runtime/);
    assert.deepEqual(readServeConfig({}, { HOTOCR_LOADERS: './a.js, b-loader' }).loaders, [
      './a.js',
      'b-loader',
    ]);
    assert.equal(readServeConfig({}, { HOTOCR_RUNTIME: 'onnxruntime-wasm' }).runtime, 'onnxruntime-wasm');
  });

  test('a plugin path is found from the working directory; a plugin that takes too long fails with LOAD_FAILED and is released when it comes back', async () => {
    const loaders = await Loaders.create({
      plugins: ['./hang.mjs'],
      cwd: join(work, 'plugins'),
      pluginTimeoutMs: 100,
    });
    assert.deepEqual(
      loaders.entries.map((e) => e.loader.name),
      ['test-hang', 'onnxruntime-node', 'onnxruntime-wasm'],
    );
    await assert.rejects(loaders.load(fake), (e: HotocrError) => {
      assert.equal(e.code, 'LOAD_FAILED');
      assert.match(e.message, /did not load ppocr 2.1.0 within 100 ms/);
      return true;
    });
    const hang = globalThis as unknown as { __hotocrHangReleased: number; __hotocrHangComeBack: () => void };
    assert.equal(hang.__hotocrHangReleased, 0);
    hang.__hotocrHangComeBack();
    await until(() => hang.__hotocrHangReleased === 1, 'the late model released');
  });

  test('the example plugin in examples/ works as docs/LOADERS.md says', async () => {
    const example = fileURLToPath(new URL('../../examples/loaders/constant-loader.mjs', import.meta.url));
    const loaders = await Loaders.create({ plugins: [example] });
    const pkg = (description?: string): LoaderPackage => ({
      ...fake,
      manifest: { ...fake.manifest, runtime: 'constant', ...(description ? { description } : {}) },
    });
    const model = await loaders.load(pkg('stand-in answer'));
    assert.equal(model.loader, 'constant');
    assert.deepEqual(model.metadata, { runtime: 'constant', text: 'stand-in answer' });
    const read = await model.read({ data: new Uint8Array(3 * 8 * 4), width: 8, height: 4 });
    assert.deepEqual(read.lines, [
      {
        text: 'stand-in answer',
        score: 1,
        box: [
          [0, 0],
          [8, 0],
          [8, 4],
          [0, 4],
        ],
      },
    ]);
    await model.release();
    await assert.rejects(loaders.load(pkg()), (e: HotocrError) => {
      assert.equal(e.code, 'LOAD_FAILED');
      assert.match(
        e.message,
        /"constant" could not load ppocr 2.1.0: a "constant" package needs a description/,
      );
      return true;
    });
  });

  test('the server default runtime applies only to packages that name none', () => {
    const loaders = Loaders.builtin({ defaultRuntime: 'onnxruntime-wasm' });
    const { runtime: _, ...unnamed } = fake.manifest;
    assert.equal(loaders.select(unnamed as LoaderPackage['manifest']).loader.name, 'onnxruntime-wasm');
    assert.equal(
      loaders.select({ ...fake.manifest, runtime: 'onnxruntime-node' }).loader.name,
      'onnxruntime-node',
    );
    assert.equal(
      Loaders.builtin().select(unnamed as LoaderPackage['manifest']).loader.name,
      'onnxruntime-node',
    );
    assert.throws(
      () => loaders.select(fake.manifest),
      (e: HotocrError) => e.code === 'LOADER_NOT_FOUND' && /runtime "anything"/.test(e.message),
    );
  });
});

describe('the WebAssembly backend', () => {
  test('reads a generated page to the same text and boxes as the native runtime', async () => {
    const pkg = await verifiedBundled(join(work, 'wasm-home'));
    const image = await decodeImage(
      await renderText(['WebAssembly 2026', '同样的文字', 'Invoice No. 4711'], {
        font: 'WenQuanYi Micro Hei',
      }),
    );
    const native = await loadOcrModel(pkg, { workers: 1 });
    const wasm = await Loaders.builtin({ defaultRuntime: 'onnxruntime-wasm' }).load(pkg, { workers: 1 });
    try {
      assert.equal(native.loader, 'onnxruntime-node');
      assert.equal(wasm.loader, 'onnxruntime-wasm');
      assert.equal(wasm.metadata.backend, 'wasm');
      const a = await native.read(image);
      const b = await wasm.read(image);
      assert.deepEqual(
        b.lines.map((l) => l.text),
        a.lines.map((l) => l.text),
      );
      assert.deepEqual(
        a.lines.map((l) => l.text.replace(/\s/g, '')),
        ['WebAssembly2026', '同样的文字', 'InvoiceNo.4711'],
      );
      for (const [i, line] of b.lines.entries()) {
        line.box.forEach(([x, y], k) => {
          const [nx, ny] = a.lines[i]!.box[k]!;
          assert.ok(
            Math.abs(x - nx) <= 2 && Math.abs(y - ny) <= 2,
            `box ${i} corner ${k}: ${x},${y} vs ${nx},${ny}`,
          );
        });
      }
    } finally {
      await native.release();
      await wasm.release();
    }
  });

  test('with the native binding missing, `hotocr serve --runtime onnxruntime-wasm` still serves', async () => {
    // A resolve hook that makes onnxruntime-node unimportable, as on a machine where it cannot install.
    const blocker = join(work, 'block-native.mjs');
    await writeFile(
      blocker,
      `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function resolve(spec, ctx, next) {
  if (spec === 'onnxruntime-node') throw new Error('no native binding for this platform');
  return next(spec, ctx);
}\`));
`,
    );
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const args = ['--port', '0', '--host', '127.0.0.1', '--data', join(work, 'wasm-only-home')];
    const child = spawn(
      process.execPath,
      ['--import', blocker, cli, 'serve', ...args, '--runtime', 'onnxruntime-wasm'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${out.slice(-2000)}`)));
      });
      const res = await fetch(`${url}/v1/ocr`, {
        method: 'POST',
        headers: { 'content-type': 'image/png' },
        body: await renderText(['No native 12']),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as OcrBody;
      assert.equal(body.lines.map((l) => l.text.replace(/\s/g, '')).join(''), 'Nonative12');
      const listed = (await (await fetch(`${url}/v1/models`)).json()) as ModelsBody;
      assert.equal(listed.models[0]?.versions[0]?.loader?.name, 'onnxruntime-wasm');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    // Without --runtime the same machine cannot start on the native default, and says what to do.
    const failed = spawnSync(process.execPath, ['--import', blocker, cli, 'serve', ...args], {
      encoding: 'utf8',
    });
    assert.notEqual(failed.status, 0);
    assert.match(failed.stderr, /LOAD_FAILED/);
    assert.match(
      failed.stderr,
      /onnxruntime-node runtime cannot start on this machine.*--runtime onnxruntime-wasm/,
    );
  });

  test('hot swap from native to wasm and back under load loses no request, and both read the same', async () => {
    const home = join(work, 'swap-home');
    const server = await serve(home);
    try {
      const wasmPkg = await bundledPackage(home, '5.0.0', 'onnxruntime-wasm');
      const nativePkg = await bundledPackage(home, '5.1.0');
      const page = await renderText(['Swap under load 99']);
      const seen = new Map<string, Set<string>>();
      const failures: string[] = [];
      let stop = false;
      let requests = 0;
      const client = async () => {
        while (!stop) {
          const { status, body } = await ocr(server, page);
          requests++;
          if (status !== 200) failures.push(`${status} ${JSON.stringify(body)}`);
          else {
            const texts = seen.get(body.model.version) ?? new Set();
            texts.add(body.lines.map((l) => l.text).join('|'));
            seen.set(body.model.version, texts);
          }
        }
      };
      const clients = [client(), client(), client()];
      const finished = () => {
        stop = true;
        return Promise.all(clients);
      };
      const swap = async (path: string, version: string) => {
        const res = await upload(server, path);
        assert.equal(res.status, 201, await res.clone().text());
        const m = await models(server);
        assert.equal(m.active, version);
        assert.equal(
          m.versions.find((v) => v.version === version)?.loader?.name,
          version === '5.0.0' ? 'onnxruntime-wasm' : 'onnxruntime-node',
        );
        // Let the new version serve a while before the next swap.
        const until = requests + 6;
        while (requests < until) await new Promise((r) => setTimeout(r, 50));
      };
      try {
        await swap(wasmPkg, '5.0.0');
        await swap(nativePkg, '5.1.0');
      } finally {
        await finished();
      }
      assert.deepEqual(failures, []);
      assert.deepEqual([...seen.keys()].sort(), ['4.0.0', '5.0.0', '5.1.0']);
      // Native and wasm versions give one and the same answer to the same page.
      const answers = [...seen.values()].flatMap((texts) => [...texts]);
      assert.equal(new Set(answers).size, 1, answers.join(' / '));
      assert.equal(answers[0]?.replace(/\s/g, ''), 'Swapunderload99');
    } finally {
      await server.close();
    }
  });
});
