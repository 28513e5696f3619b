import { readdirSync, readFileSync } from 'node:fs';

/** The ids of this process's threads, sorted. */
export const threadIds = (): string[] => readdirSync('/proc/self/task').sort();

/** How many of this process's threads run at this nice value (Linux: nice is per thread). */
export function atNice(nice: number): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, nice field 19.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) === nice) n++;
    } catch {
      // the thread ended while being read
    }
  }
  return n;
}
