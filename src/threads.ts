/**
 * The node flags a thread of ours starts with: the process's, less `--input-type`, which a
 * thread inherits and which then refuses the thread's own module file (a process started
 * with `node --input-type=module -e ...` could start no thread).
 */
export function threadExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--input-type'));
}
