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

/** The CPU features that move these figures between machines: vector width and SHA extensions. */
async function cpuFlags(): Promise<string> {
  let flags: Set<string>;
  try {
    const info = await readFile('/proc/cpuinfo', 'utf8');
    flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
  } catch {
    return 'CPU flags unknown';
  }
  const named: [string, string][] = [
    ['avx2', 'AVX2'],
    ['avx512f', 'AVX-512'],
    ['avx512_vnni', 'AVX-512 VNNI'],
    ['sha_ni', 'SHA-NI'],
  ];
  const have = named.filter(([flag]) => flags.has(flag)).map(([, name]) => name);
  return have.length > 0 ? have.join(', ') : 'no AVX2';
}

/** Describes the machine a figure was measured on, printed with every benchmark. */
export async function machine(): Promise<string> {
  const os = await import('node:os');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} cores (${cpu}; ${await cpuFlags()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
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
