import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoOf, HotocrError, messageOf } from '../errors.js';

const PREFIX = 'upload-';

function tooLarge(limit: number): HotocrError {
  return new HotocrError(
    'PACKAGE_TOO_LARGE',
    `The upload is over the ${limit}-byte limit (--upload-limit, HOTOCR_UPLOAD_LIMIT).`,
  );
}

/**
 * Streams an uploaded package into a new file in `dir` without holding it in memory, and
 * stops at `limit` bytes. On any failure (too large, client gone, disk full) the partial
 * file is removed and a coded error is thrown: PACKAGE_TOO_LARGE, BODY_MISSING,
 * REQUEST_ABORTED or STORAGE_FULL.
 */
export async function saveUpload(stream: Readable, dir: string, limit: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${PREFIX}${randomUUID()}.zip`);
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      callback(size > limit ? tooLarge(limit) : null, chunk);
    },
  });
  try {
    await pipeline(stream, counter, createWriteStream(path, { flags: 'wx' }));
    // A multipart file cut at the plugin's own limit ends early instead of failing.
    if ((stream as Readable & { truncated?: boolean }).truncated) throw tooLarge(limit);
    if (size === 0)
      throw new HotocrError(
        'BODY_MISSING',
        'Send the package as the body (Content-Type application/zip) or as a multipart file.',
      );
    return path;
  } catch (error) {
    await rm(path, { force: true });
    throw uploadError(error, limit);
  }
}

function uploadError(error: unknown, limit: number): HotocrError {
  if (error instanceof HotocrError) return error;
  const code = errnoOf(error);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new HotocrError(
      'STORAGE_FULL',
      'The server ran out of disk space while receiving the package; nothing was kept and the version in service is untouched.',
      { cause: error },
    );
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(limit);
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE')
    return new HotocrError('REQUEST_ABORTED', 'The upload ended before the whole package arrived.', {
      cause: error,
    });
  return new HotocrError('UPLOAD_FAILED', `The upload could not be stored: ${messageOf(error)}`, {
    cause: error,
  });
}

/** Removes what uploads interrupted by a crash left behind. */
export async function clearUploads(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.startsWith(PREFIX)).map((n) => rm(join(dir, n), { force: true })));
}
