import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

/** `hotocr serve` running in a process of its own, as an operator starts it. */
export interface ServeProcess {
  readonly child: ChildProcess;
  /** The address it listens on. */
  readonly url: string;
  /** Everything it logged on stdout so far. */
  log(): string;
  /** Resolves when `pattern` appears in what the server logs from now on; rejects if it exits first. */
  waitFor(pattern: RegExp): Promise<void>;
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `hotocr serve --port 0 --host 127.0.0.1` with `args`, and resolves once it listens.
 * `nodeArgs` go before the CLI (e.g. `--import` a loader hook).
 */
export async function serveProcess(
  args: readonly string[],
  nodeArgs: readonly string[] = [],
): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, CLI, 'serve', '--port', '0', '--host', '127.0.0.1', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const waiters: { pattern: RegExp; from: number; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(out.slice(w.from))) w.resolve();
      else waiters.push(w);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      waiters.push({ pattern, from: out.length, resolve });
      void exited.then((code) =>
        reject(new Error(`serve exited (${code}) before ${pattern}: ${out.slice(-2000)}${err}`)),
      );
    });
  await waitFor(/Server listening at/);
  const url = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(out)![1]!;
  return { child, url, log: () => out, waitFor, exited };
}
