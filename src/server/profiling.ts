import { Session } from 'node:inspector/promises';
import { Readable } from 'node:stream';
import { HotocrError } from '../errors.js';

/**
 * On-demand profiles of the server's main thread (the HTTP layer, decoding, routing; the
 * inference threads are not in them). One profile at a time: a second request while one
 * runs is refused with PROFILE_BUSY rather than queued.
 */
export class Profiler {
  #busy = false;

  async #exclusive<T>(work: (session: Session) => Promise<T>): Promise<T> {
    if (this.#busy)
      throw new HotocrError('PROFILE_BUSY', 'A profile is already being taken; try again when it ends.');
    this.#busy = true;
    const session = new Session();
    session.connect();
    try {
      return await work(session);
    } finally {
      session.disconnect();
      this.#busy = false;
    }
  }

  /** A CPU profile over `seconds`, as the JSON of a .cpuprofile file (Chrome DevTools, speedscope). */
  cpu(seconds: number, signal?: AbortSignal): Promise<string> {
    return this.#exclusive(async (session) => {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      const { profile } = await session.post('Profiler.stop');
      await session.post('Profiler.disable');
      return JSON.stringify(profile);
    });
  }

  /**
   * A heap snapshot (a .heapsnapshot file). Taking it pauses the main thread for a moment
   * proportional to the heap, and holds the snapshot's text in memory while it is sent.
   */
  heap(): Promise<Readable> {
    return this.#exclusive(async (session) => {
      const chunks: string[] = [];
      session.on('HeapProfiler.addHeapSnapshotChunk', (m) => {
        chunks.push(m.params.chunk);
      });
      await session.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
      return Readable.from(chunks);
    });
  }
}
