import { readdirSync, readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

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

/**
 * Makes `count` of this process's worker threads whose script URL contains `script` die as a
 * crash would, through the inspector, so that the code under test needs no hook of its own:
 * each throws an uncaught error on the next message it receives, just after its own handler
 * has started on it. Resolves once that is set up in every one of them.
 */
export async function crashOnNextMessage(script: string, count: number): Promise<void> {
  const session = new Session();
  session.connect();
  try {
    const found: string[] = [];
    session.on('NodeWorker.attachedToWorker', ({ params }) => {
      if (params.workerInfo.url.includes(script)) found.push(params.sessionId);
    });
    const answered = new Map<string, () => void>();
    session.on('NodeWorker.receivedMessageFromWorker', ({ params }) => {
      if ((JSON.parse(params.message) as { id?: number }).id === 1) answered.get(params.sessionId)?.();
    });
    // Running workers are reported as the domain is enabled, before its answer.
    await session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
    const crash =
      "require('node:worker_threads').parentPort.on('message', () => { throw new Error('a crash made by the test') })";
    // One after another: a thread that has just died may still be listed, and never answers.
    let armed = 0;
    for (const sessionId of found) {
      if (armed === count) break;
      // The timer also holds the process open meanwhile: an idle thread may not.
      const done = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        answered.set(sessionId, () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      await session.post('NodeWorker.sendMessageToWorker', {
        sessionId,
        message: JSON.stringify({
          id: 1,
          method: 'Runtime.evaluate',
          // The console's API gives the thread's own require().
          params: { expression: crash, includeCommandLineAPI: true },
        }),
      });
      if (await done) armed++;
    }
    if (armed < count)
      throw new Error(`${armed} threads running ${script} answered, fewer than the ${count} to crash`);
  } finally {
    session.disconnect();
  }
}
