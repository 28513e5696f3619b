/**
 * `hotocr serve` as its own process for the benchmarks that drive it over HTTP (load, soak,
 * swap-breakdown): a free port, the admin token from a file, warn-level logs (request logs
 * would cost the server time), and MALLOC_ARENA_MAX=2 as `npm start` and the image set it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import {
  BUNDLED_NAME,
  bundledManifest,
  keyFileSigner,
  pack,
  writeBundledSource,
} from '../../src/pack/index.js';

export interface BenchServer {
  readonly url: string;
  readonly child: ChildProcess;
  /** The exit code once the process has ended. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });

/**
 * Starts the server on `home` with these extra flags and waits until /readyz answers 200.
 * `main` runs another build's command line instead of this one's (a peer to compare with).
 */
export async function startServer(options: {
  home: string;
  tokenFile: string;
  args?: readonly string[];
  stdout?: 'inherit' | 'ignore';
  mallocArenaMax?: string;
  main?: string;
}): Promise<BenchServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      options.main ?? join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js'),
      'serve',
      ...['--port', String(port), '--host', '127.0.0.1', '--data', options.home],
      ...['--admin-token-file', options.tokenFile, '--log-level', 'warn'],
      ...(options.args ?? []),
    ],
    {
      stdio: ['ignore', options.stdout ?? 'ignore', 'inherit'],
      env: { ...process.env, MALLOC_ARENA_MAX: options.mallocArenaMax ?? '2' },
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const stop = () => {
    child.kill('SIGTERM');
    return exited;
  };
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode})`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { url, child, exited, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Marks a graph with `text` as its ONNX doc_string (field 6 of ModelProto, appended: the last
 * value read wins): the same computation in bytes of another SHA-256, as a retrained graph
 * would have.
 */
async function markGraph(path: string, text: string): Promise<void> {
  const doc = Buffer.from(text);
  if (doc.length > 127) throw new Error('a mark longer than 127 bytes needs a longer length field');
  await appendFile(path, Buffer.concat([Buffer.from([(6 << 3) | 2, doc.length]), doc]));
}

/**
 * The bundled model repacked under each version (as model `name`, ppocr by default), signed
 * with the server's development key. With `newGraphs`, each version's graphs differ in their
 * bytes from every other's (see {@link markGraph}), so that nothing made from one version's
 * graphs serves the next.
 */
export async function bundledPackages(
  dir: string,
  home: string,
  versions: readonly string[],
  newGraphs = false,
  name = BUNDLED_NAME,
): Promise<Buffer[]> {
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  const out: Buffer[] = [];
  for (const v of versions) {
    const src = await writeBundledSource(join(dir, `src-${name}-${v}`), v);
    if (name !== BUNDLED_NAME)
      await writeFile(join(src, 'config.json'), JSON.stringify({ ...bundledManifest(v), name }, null, 2));
    if (newGraphs)
      await Promise.all(['det', 'rec', 'cls'].map((g) => markGraph(join(src, `${g}.onnx`), `${g} ${v}`)));
    const zip = join(dir, `${name}-${v}.zip`);
    await pack(src, { signer, out: zip });
    out.push(await readFile(zip));
    await rm(zip);
    await rm(src, { recursive: true });
  }
  return out;
}

/** Bytes sent at a time by a paced upload. */
const PACED_CHUNK = 256 * 1024;

/**
 * Uploads a package through the admin API; the answer's status (201 once it is active). With
 * `seconds`, the body is sent in 256 KiB chunks spread evenly over that time, as a client on
 * a slower link would send it; otherwise at once.
 */
export async function upload(
  url: string,
  token: string,
  body: Buffer,
  seconds?: number,
): Promise<{ status: number; text: string }> {
  const headers = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/zip',
    'content-length': String(body.length),
  };
  const paced = () => {
    const chunks = Math.ceil(body.length / PACED_CHUNK);
    const start = performance.now();
    return new ReadableStream<Uint8Array>({
      async start(controller) {
        for (let i = 0; i < chunks; i++) {
          controller.enqueue(body.subarray(i * PACED_CHUNK, (i + 1) * PACED_CHUNK));
          const wait = start + (1000 * (seconds ?? 0) * (i + 1)) / chunks - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        controller.close();
      },
    });
  };
  const res = await fetch(`${url}/v1/models`, {
    method: 'POST',
    headers,
    ...(seconds ? { body: paced(), duplex: 'half' } : { body }),
  });
  return { status: res.status, text: await res.text() };
}
