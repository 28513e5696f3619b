/**
 * The hashing thread: reads package bytes, hashes them, and keeps the ones verification
 * keeps, so that none of this (about 40 ms of CPU and 16 MB of short-lived memory per
 * PP-OCRv4 package) runs on the main thread, which dispatches every request. A job may ask
 * for a lower scheduling priority (a higher nice value), so that a package verified while
 * another version serves leaves the cores to serving; the thread returns to its own
 * priority after the job.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
// The archive module alone: the package index would also load the manifest schema.
import { scanDescriptor } from '../package/archive.js';
import { type SerializedError, serializeError } from '../thread-errors.js';

export interface HashRange {
  readonly name: string;
  readonly start: number;
  readonly end: number;
  /** Keep the bytes, not only their hash. */
  readonly keep: boolean;
}

export type HashRequest =
  | ({ id: number; nice?: number } & (
      | {
          /** Hashes `size` bytes of an open descriptor of this process, and each range within them. */
          type: 'scan';
          fd: number;
          size: number;
          ranges: readonly HashRange[];
        }
      | { /** Hashes a whole file. */ type: 'file'; path: string }
    ))
  /** Stops job `id` at its next chunk, or before it starts; it answers with code ABORTED. */
  | { type: 'cancel'; id: number };

export interface HashedRange {
  readonly name: string;
  readonly sha256: string;
  readonly size: number;
  /** The range's bytes, moved to the requesting thread, when it asked to keep them. */
  readonly bytes?: ArrayBuffer;
}

export type HashReply =
  | { id: number; ok: true; sha256: string; ranges: HashedRange[] }
  | {
      id: number;
      ok: false;
      error: SerializedError;
      /** The thread could not take its own priority back, and stops after this reply. */
      stopping?: boolean;
    };

const port = parentPort!;

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Jobs received and not yet answered, and those of them asked to stop (checked at every chunk). */
const waiting = new Set<number>();
const cancelled = new Set<number>();

function stopIfCancelled(id: number): void {
  // Not a HotocrError: the caller throws its signal's reason instead; this never reaches a user.
  if (cancelled.has(id)) throw Object.assign(new Error('The job was stopped.'), { code: 'ABORTED' });
}

async function scan(
  request: Extract<HashRequest, { type: 'scan' }>,
): Promise<{ sha256: string; ranges: HashedRange[]; transfer: ArrayBuffer[] }> {
  const whole = createHash('sha256');
  const states = request.ranges.map((r) => ({
    range: r,
    hash: createHash('sha256'),
    offset: 0,
    // Unpooled, so that its ArrayBuffer holds these bytes alone and can be moved.
    bytes: r.keep ? Buffer.allocUnsafeSlow(r.end - r.start) : undefined,
  }));
  await scanDescriptor(
    request.fd,
    request.size,
    (chunk) => {
      stopIfCancelled(request.id);
      whole.update(chunk);
    },
    states.map((s) => ({
      start: s.range.start,
      end: s.range.end,
      sink: (chunk: Buffer) => {
        s.hash.update(chunk);
        if (s.bytes) chunk.copy(s.bytes, s.offset);
        s.offset += chunk.length;
      },
    })),
  );
  const ranges = states.map((s) => ({
    name: s.range.name,
    sha256: s.hash.digest('hex'),
    size: s.offset,
    ...(s.bytes ? { bytes: s.bytes.buffer as ArrayBuffer } : {}),
  }));
  return {
    sha256: whole.digest('hex'),
    ranges,
    transfer: ranges.flatMap((r) => (r.bytes ? [r.bytes] : [])),
  };
}

/** Runs `job` at `nice` (when that is lower priority than now); false when the priority could not be restored. */
async function atNice<T>(
  nice: number | undefined,
  job: () => Promise<T>,
): Promise<{ value: T; restored: boolean }> {
  const own = getPriority(0);
  const lower = nice !== undefined && nice > own;
  // On Linux, getPriority(0) and setPriority(0) act on this thread alone.
  if (lower) setPriority(0, nice);
  let restored = true;
  const restore = () => {
    if (!lower) return;
    try {
      setPriority(0, own);
    } catch {
      restored = false;
    }
  };
  try {
    const value = await job();
    restore();
    return { value, restored };
  } catch (error) {
    restore();
    throw Object.assign(error as object, { restored });
  }
}

// One job at a time: a second waits rather than sharing the thread's time.
let queue: Promise<unknown> = Promise.resolve();

port.on('message', (request: HashRequest) => {
  if (request.type === 'cancel') {
    // Handled at once, not queued: the job it names may be reading now.
    if (waiting.has(request.id)) cancelled.add(request.id);
    return;
  }
  waiting.add(request.id);
  queue = queue.then(async () => {
    try {
      stopIfCancelled(request.id);
      const { value, restored } = await atNice(request.nice, async () =>
        request.type === 'scan'
          ? scan(request)
          : { sha256: await hashFile(request.path), ranges: [], transfer: [] },
      );
      port.postMessage(
        { id: request.id, ok: true, sha256: value.sha256, ranges: value.ranges } satisfies HashReply,
        value.transfer,
      );
      if (!restored) port.close();
    } catch (error) {
      const restored = (error as { restored?: boolean }).restored !== false;
      port.postMessage({
        id: request.id,
        ok: false,
        error: serializeError(error),
        ...(restored ? {} : { stopping: true }),
      } satisfies HashReply);
      if (!restored) port.close();
    } finally {
      waiting.delete(request.id);
      cancelled.delete(request.id);
    }
  });
});
