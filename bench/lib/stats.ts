import { readFile } from 'node:fs/promises';

/** Median of a list of numbers (the figure every benchmark here reports: the machines are noisy). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function ms(ns: bigint | number): number {
  return Number(ns) / 1e6;
}

/** Describes the machine a figure was measured on, printed with every benchmark. */
export async function machine(): Promise<string> {
  const os = await import('node:os');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/**
 * CPU time (user + system, ms) a process has used, whole (every thread, `/proc/<pid>/stat`)
 * and its main thread's alone (`/proc/<pid>/task/<pid>/stat`), at 100 ticks/s.
 */
export async function processCpuMs(pid: number): Promise<{ whole: number; main: number }> {
  const read = async (stat: string) => {
    const fields = (await readFile(stat, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime
  };
  const [whole, main] = await Promise.all([read(`/proc/${pid}/stat`), read(`/proc/${pid}/task/${pid}/stat`)]);
  return { whole: whole!, main: main! };
}
