/**
 * `hotocr serve` as its own process for the benchmarks that drive it over HTTP (load, soak,
 * swap-breakdown): a free port, the admin token from a file, warn-level logs (request logs
 * would cost the server time), and MALLOC_ARENA_MAX=2 as `npm start` and the image set it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { keyFileSigner, pack, writeBundledSource } from '../../src/pack/index.js';

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

/** Starts the server on `home` with these extra flags and waits until /readyz answers 200. */
export async function startServer(options: {
  home: string;
  tokenFile: string;
  args?: readonly string[];
  stdout?: 'inherit' | 'ignore';
  mallocArenaMax?: string;
}): Promise<BenchServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js'),
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

/** The bundled model repacked under each version, signed with the server's development key. */
export async function bundledPackages(
  dir: string,
  home: string,
  versions: readonly string[],
): Promise<Buffer[]> {
  const signer = await keyFileSigner(join(home, 'dev-key', 'signing.key'));
  const out: Buffer[] = [];
  for (const v of versions) {
    const src = await writeBundledSource(join(dir, `src-${v}`), v);
    const zip = join(dir, `ppocr-${v}.zip`);
    await pack(src, { signer, out: zip });
    out.push(await readFile(zip));
    await rm(zip);
    await rm(src, { recursive: true });
  }
  return out;
}

/** Uploads a package through the admin API; the answer's status (201 once it is active). */
export async function upload(
  url: string,
  token: string,
  body: Buffer,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/v1/models`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/zip' },
    body,
  });
  return { status: res.status, text: await res.text() };
}
