/**
 * Scheduling priority for loading: a version loaded while another one serves can do its
 * loading and warm-up at a lower priority (a higher nice value), so the serving threads keep
 * the cores. On Linux the nice value belongs to each thread, so an inference thread can lower
 * its own priority and leave every other thread alone; raising it again needs CAP_SYS_NICE
 * (or a nice limit that allows it), which {@link canRestorePriority} checks before anything
 * is lowered: a thread must never be left serving at low priority.
 */
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';

const CAP_SYS_NICE = 23n;

/** Whether this process may give a thread back the priority it lowered (false off Linux). */
export function canRestorePriority(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const eff = /^CapEff:\s*([0-9a-f]+)$/im.exec(status)?.[1];
    if (eff && (BigInt(`0x${eff}`) >> CAP_SYS_NICE) & 1n) return true;
    // RLIMIT_NICE: a soft limit r lets a thread go down to nice 20 - r.
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max nice priority\s+(\S+)/im.exec(limits)?.[1];
    if (soft === 'unlimited') return true;
    return soft !== undefined && 20 - Number(soft) <= getPriority(0);
  } catch {
    return false;
  }
}
