import { Worker, type WorkerOptions } from 'node:worker_threads';
import { errnoOf } from './errors.js';

/**
 * Starts a thread of ours running `script`, with the process's node flags as Node hands them
 * to a thread when none are given: V8's (`--max-old-space-size`, `--trace-gc`...) are the
 * whole process's already, and a thread refuses them when they are given to it. The one
 * exception is `--input-type`, which a thread would inherit and which then refuses the
 * thread's own module file (a process started with `node --input-type=module -e ...` could
 * start no thread): there the flags are given without it, and, if a thread refuses one of
 * them (one of V8's), none are.
 */
export function startThread(script: URL, options: Omit<WorkerOptions, 'execArgv'> = {}): Worker {
  const args = process.execArgv;
  const at = args.findIndex((a) => a === '--input-type' || a.startsWith('--input-type='));
  if (at < 0) return new Worker(script, options);
  // `--input-type module` takes the next argument as its value; `--input-type=module` does not.
  const end = args[at] === '--input-type' ? at + 2 : at + 1;
  const execArgv = [...args.slice(0, at), ...args.slice(end)];
  try {
    return new Worker(script, { ...options, execArgv });
  } catch (error) {
    if (errnoOf(error) !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
    return new Worker(script, { ...options, execArgv: [] });
  }
}
