import { close as closeFd, constants, fstat, open as openFd, read as readFd } from 'node:fs';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import yauzl from 'yauzl';
import { errnoOf, messageOf, PackageRejectedError } from '../errors.js';
import { OMS_SIGNATURE_FILE } from './checksum-file.js';
import { type ArchiveLimits, DEFAULT_LIMITS } from './limits.js';

const openAsync = promisify(openFd);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(closeFd);
const readAsync = promisify(readFd);
/** Read size of the single front-to-back pass: large enough that per-chunk costs vanish. */
const SCAN_CHUNK = 1024 * 1024;

/** What the format allows as an entry name: flat, portable, no surprises for any unzip tool. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const UNIX_TYPE_MASK = 0o170000;
const UNIX_SYMLINK = 0o120000;
const UNIX_DIRECTORY = 0o040000;
const DOS_DIRECTORY = 0x10;
const FLAG_ENCRYPTED = 0x1;
const FLAG_UTF8 = 0x800;
const INFOZIP_UNICODE_PATH = 0x7075;

/** One file inside a package, as the central directory describes it (after every check passed). */
export interface ArchiveEntry {
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly method: 'stored' | 'deflated';
}

function reject(
  code: 'ARCHIVE_INVALID' | 'ARCHIVE_TOO_LARGE' | 'PATH_UNSAFE' | 'ENTRY_DUPLICATE' | 'MODEL_NOT_FLAT',
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new PackageRejectedError(code, message, { details, cause });
}

function decodeName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown as Buffer;
  const printable = JSON.stringify(raw.toString('latin1'));
  const ascii = raw.every((b) => b < 0x80);
  if (!ascii && (entry.generalPurposeBitFlag & FLAG_UTF8) === 0) {
    reject(
      'PATH_UNSAFE',
      `Entry ${printable} has a non-ASCII name that is not marked UTF-8; use ASCII names.`,
      { entry: printable },
    );
  }
  let name: string;
  try {
    // ignoreBOM: a leading byte-order mark stays in the name (and is refused there), never
    // silently dropped, so the name checked is the name every other tool reads.
    name = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch (cause) {
    reject(
      'PATH_UNSAFE',
      `Entry ${printable} has a name that is not valid UTF-8.`,
      { entry: printable },
      cause,
    );
  }
  return name;
}

/**
 * The name an Info-ZIP Unicode Path field (0x7075) gives, which unzip prefers to the header's
 * own when its CRC matches; undefined when there is none. Malformed ones are refused.
 */
function unicodePathOf(
  extra: Buffer | readonly { id: number; data: Buffer }[],
  shown: string,
): string | undefined {
  let fields: readonly { id: number; data: Buffer }[];
  if (Buffer.isBuffer(extra)) {
    const parsed: { id: number; data: Buffer }[] = [];
    for (let i = 0; i + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(i);
      const size = extra.readUInt16LE(i + 2);
      if (i + 4 + size > extra.length) break; // a short tail is no field; unzip ignores it too
      parsed.push({ id, data: extra.subarray(i + 4, i + 4 + size) });
      i += 4 + size;
    }
    fields = parsed;
  } else fields = extra;
  const found = fields.filter((f) => f.id === INFOZIP_UNICODE_PATH);
  if (found.length === 0) return undefined;
  const field = found[0]!;
  if (found.length > 1 || field.data.length < 5 || field.data[0] !== 1)
    reject('PATH_UNSAFE', `Entry ${shown} carries a malformed Unicode Path field (0x7075).`, {
      entry: shown,
    });
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(field.data.subarray(5));
  } catch {
    return reject('PATH_UNSAFE', `Entry ${shown} carries a Unicode Path field that is not valid UTF-8.`, {
      entry: shown,
    });
  }
}

/** Refuses an entry whose Unicode Path field names another file than its header: unzip would extract that one. */
function checkUnicodePath(
  name: string,
  extra: Buffer | readonly { id: number; data: Buffer }[],
  where: string,
): void {
  const shown = JSON.stringify(name);
  const other = unicodePathOf(extra, shown);
  if (other !== undefined && other !== name)
    reject(
      'PATH_UNSAFE',
      `Entry ${shown} carries a Unicode Path field (0x7075) in its ${where} naming ${JSON.stringify(other)}, which unzip would use instead; the two names must agree.`,
      { entry: name, unicodePath: other },
    );
}

/** An entry refused only for being, or lying in, a folder: what it is told as depends on the whole archive. */
interface FolderEntry {
  readonly name: string;
  readonly message: string;
}

/**
 * Refuses an unsafe name at once; a folder, or an entry in one, is returned instead, for the
 * caller to refuse once it knows whether the archive is a signed model directory (model.sig).
 */
function checkName(name: string, entry: yauzl.Entry): FolderEntry | undefined {
  const shown = JSON.stringify(name);
  const unixMode =
    entry.versionMadeBy >> 8 === 3 ? (entry.externalFileAttributes >>> 16) & UNIX_TYPE_MASK : 0;
  if (unixMode === UNIX_SYMLINK) {
    reject('PATH_UNSAFE', `Entry ${shown} is a symbolic link; a package holds regular files only.`, {
      entry: name,
    });
  }
  const folder =
    name.endsWith('/') || unixMode === UNIX_DIRECTORY || (entry.externalFileAttributes & DOS_DIRECTORY) !== 0;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) {
    reject('PATH_UNSAFE', `Entry ${shown} has an absolute path; entries must be bare file names.`, {
      entry: name,
    });
  }
  if (name.includes('\\')) {
    reject('PATH_UNSAFE', `Entry ${shown} contains a backslash; entries must be bare file names.`, {
      entry: name,
    });
  }
  if (name.split('/').includes('..')) {
    reject('PATH_UNSAFE', `Entry ${shown} climbs out of the package with "..".`, { entry: name });
  }
  if (folder)
    return {
      name,
      message: `Entry ${shown} is a folder; a package is flat (no folders): zip the files alone.`,
    };
  if (name.includes('/'))
    return {
      name,
      message: `Entry ${shown} is inside a folder; a package is flat: zip the files alone (zip -j).`,
    };
  if (!SAFE_NAME.test(name)) {
    reject(
      'PATH_UNSAFE',
      `Entry ${shown} has a name outside [A-Za-z0-9._-] (at most 128 characters, not starting with "." or "-").`,
      { entry: name },
    );
  }
  return undefined;
}

/**
 * A ZIP package opened for reading. `open()` runs every structural check of SPEC section 2
 * step 1 before any entry is decompressed: limits, names, entry types, duplicates, local
 * headers that disagree with the central directory, and entries whose bytes overlap.
 * The file is read through one descriptor for the archive's whole life, so a path swapped
 * on disk after `open()` changes nothing that is read.
 */
export class PackageArchive {
  readonly #zip: yauzl.ZipFile;
  readonly #entries: Map<string, yauzl.Entry>;
  readonly #fd: number;
  /** Where each entry's (compressed) bytes start in the file, from its local header. */
  readonly #dataStart: Map<string, number>;
  readonly #limits: ArchiveLimits;
  #closed = false;
  /** Size of the archive file in bytes. */
  readonly size: number;
  /** Entries in central directory order. */
  readonly entries: readonly ArchiveEntry[];

  private constructor(
    zip: yauzl.ZipFile,
    fd: number,
    dataStart: Map<string, number>,
    entries: Map<string, yauzl.Entry>,
    limits: ArchiveLimits,
    size: number,
  ) {
    this.#zip = zip;
    this.#entries = entries;
    this.#fd = fd;
    this.#dataStart = dataStart;
    this.#limits = limits;
    this.size = size;
    this.entries = [...entries.entries()].map(([name, e]) => ({
      name,
      compressedSize: e.compressedSize,
      uncompressedSize: e.uncompressedSize,
      method: e.compressionMethod === 0 ? 'stored' : 'deflated',
    }));
  }

  /** Opens `path` and checks its structure; throws a {@link PackageRejectedError} on the first problem. */
  static async open(path: string, limits: ArchiveLimits = DEFAULT_LIMITS): Promise<PackageArchive> {
    let fd: number;
    try {
      // Non-blocking, so a FIFO put where a package was expected cannot hold the reader forever.
      fd = await openAsync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (cause) {
      const code = errnoOf(cause);
      const why =
        code === 'ENOENT'
          ? 'it is gone (moved or deleted before it could be read)'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : code === 'EISDIR'
              ? 'it is a directory'
              : messageOf(cause);
      reject('ARCHIVE_INVALID', `The package cannot be opened: ${why}.`, { errno: code }, cause);
    }
    let zip: yauzl.ZipFile | undefined;
    try {
      const info = await fstatAsync(fd);
      if (!info.isFile()) reject('ARCHIVE_INVALID', 'The package is not a regular file.');
      const { size } = info;
      if (size > limits.maxArchiveBytes) {
        reject(
          'ARCHIVE_TOO_LARGE',
          `The archive is ${size} bytes, over the limit of ${limits.maxArchiveBytes}.`,
          { size, limit: limits.maxArchiveBytes },
        );
      }
      if (size === 0) reject('ARCHIVE_INVALID', 'The file is empty, not a ZIP archive.');
      try {
        zip = await yauzl.fromFdPromise(fd, {
          autoClose: false,
          lazyEntries: true,
          decodeStrings: false,
          validateEntrySizes: true,
          strictFileNames: false,
        });
      } catch (cause) {
        reject('ARCHIVE_INVALID', `The file is not a readable ZIP archive (${messageOf(cause)}).`, {}, cause);
      }
      if (zip.entryCount > limits.maxEntries) {
        reject(
          'ARCHIVE_TOO_LARGE',
          `The archive has ${zip.entryCount} entries, over the limit of ${limits.maxEntries}.`,
          { entries: zip.entryCount, limit: limits.maxEntries },
        );
      }
      const entries = await readCentralDirectory(zip, limits);
      const dataStart = await checkLocalHeaders(zip, entries, size);
      return new PackageArchive(zip, fd, dataStart, entries, limits, size);
    } catch (error) {
      // Once yauzl holds the descriptor, its close() closes it (after any open entry stream ends).
      if (zip) zip.close();
      else await closeAsync(fd);
      throw error;
    }
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  entry(name: string): ArchiveEntry | undefined {
    return this.entries.find((e) => e.name === name);
  }

  /** A stream of the entry's uncompressed bytes; errors if they disagree with the declared size. */
  async openStream(name: string): Promise<Readable> {
    const entry = this.#entries.get(name);
    if (!entry) throw new Error(`no entry ${name}`);
    try {
      return await this.#zip.openReadStreamPromise(entry);
    } catch (cause) {
      reject(
        'ARCHIVE_INVALID',
        `Entry ${JSON.stringify(name)} cannot be read (${messageOf(cause)}).`,
        { entry: name },
        cause,
      );
    }
  }

  /** Reads a small entry whole (config.json, checksum.sha256, signature.sig, signer.pem). */
  async readSmall(name: string): Promise<Buffer> {
    const entry = this.#entries.get(name);
    if (!entry) throw new Error(`no entry ${name}`);
    const limit = this.#limits.maxSmallEntryBytes;
    if (entry.uncompressedSize > limit) {
      reject(
        'ARCHIVE_TOO_LARGE',
        `Entry ${JSON.stringify(name)} is ${entry.uncompressedSize} bytes; at most ${limit} are allowed for it.`,
        { entry: name, limit },
      );
    }
    return collect(await this.openStream(name), name);
  }

  /**
   * The descriptor the archive is read through, for another thread of this process to read
   * the same bytes with {@link scanDescriptor} (a path could be swapped on disk; this cannot).
   * Valid until {@link close}.
   */
  get descriptor(): number {
    if (this.#closed) throw new Error('archive closed');
    return this.#fd;
  }

  /** Where a *stored* entry's bytes lie in the file: `[start, end)`. */
  storedRange(name: string): { start: number; end: number } {
    const entry = this.#entries.get(name);
    if (entry?.compressionMethod !== 0) throw new Error(`${name} is not a stored entry`);
    const start = this.#dataStart.get(name)!;
    return { start, end: start + entry.compressedSize };
  }

  /**
   * The bytes of a *stored* entry, read front to back through the archive's descriptor into
   * one reused buffer of `chunkSize` bytes: each chunk is valid only until the next is asked
   * for (copy what must be kept). Memory stays flat whatever the entry's size.
   */
  async *readStored(name: string, chunkSize = SCAN_CHUNK): AsyncGenerator<Buffer> {
    const { start, end } = this.storedRange(name);
    const buffer = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(end - start, 1)));
    for (let position = start; position < end; ) {
      const { bytesRead } = await readAsync(
        this.descriptor,
        buffer,
        0,
        Math.min(buffer.length, end - position),
        position,
      );
      if (bytesRead === 0) reject('ARCHIVE_INVALID', 'The archive became shorter while it was read.');
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  }

  /** Whether the entry's bytes are stored as they are (not deflated). */
  isStored(name: string): boolean {
    return this.#entries.get(name)?.compressionMethod === 0;
  }

  /** Closes the descriptor. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // yauzl closes the descriptor it was handed once the last open entry stream ends.
    this.#zip.close();
  }
}

/** A byte range of the file and what receives its bytes as they pass. */
export interface ScanRange {
  readonly start: number;
  readonly end: number;
  readonly sink: (bytes: Buffer) => void;
}

/**
 * Reads `size` bytes of the open file `fd` once, front to back, in large chunks: every chunk
 * goes to `onChunk` (to hash the whole file), and the bytes of each range go to its sink as
 * they pass. One read serves both, so what the sinks see is exactly what was hashed as the
 * archive. Throws ARCHIVE_INVALID if the file is shorter than `size`.
 */
export async function scanDescriptor(
  fd: number,
  size: number,
  onChunk: (chunk: Buffer) => void,
  ranges: readonly ScanRange[],
): Promise<void> {
  const buffer = Buffer.allocUnsafe(SCAN_CHUNK);
  for (let position = 0; position < size; ) {
    const { bytesRead } = await readAsync(fd, buffer, 0, Math.min(SCAN_CHUNK, size - position), position);
    if (bytesRead === 0) reject('ARCHIVE_INVALID', 'The archive became shorter while it was read.');
    const chunk = buffer.subarray(0, bytesRead);
    onChunk(chunk);
    const chunkEnd = position + bytesRead;
    for (const r of ranges) {
      const from = Math.max(r.start, position);
      const to = Math.min(r.end, chunkEnd);
      if (from < to) r.sink(chunk.subarray(from - position, to - position));
    }
    position = chunkEnd;
  }
}

/** Collects a stream into one buffer, mapping read errors to ARCHIVE_INVALID. */
export async function collect(stream: Readable, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } catch (cause) {
    reject(
      'ARCHIVE_INVALID',
      `Entry ${JSON.stringify(name)} is corrupt (${messageOf(cause)}).`,
      { entry: name },
      cause,
    );
  }
  return Buffer.concat(chunks);
}

async function readCentralDirectory(
  zip: yauzl.ZipFile,
  limits: ArchiveLimits,
): Promise<Map<string, yauzl.Entry>> {
  const entries = new Map<string, yauzl.Entry>();
  const folded = new Map<string, string>();
  let folder: FolderEntry | undefined;
  let total = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const name = decodeName(entry);
      const inFolder = checkName(name, entry);
      if (inFolder) {
        folder ??= inFolder;
        continue;
      }
      if (entries.has(name)) {
        reject('ENTRY_DUPLICATE', `Entry ${JSON.stringify(name)} appears twice; each name must be unique.`, {
          entry: name,
        });
      }
      const other = folded.get(name.toLowerCase());
      if (other !== undefined) {
        reject(
          'ENTRY_DUPLICATE',
          `Entries ${JSON.stringify(other)} and ${JSON.stringify(name)} differ only by case; they would collide on case-insensitive file systems.`,
          { entry: name, other },
        );
      }
      if ((entry.generalPurposeBitFlag & FLAG_ENCRYPTED) !== 0) {
        reject(
          'ARCHIVE_INVALID',
          `Entry ${JSON.stringify(name)} is encrypted; packages are signed, not encrypted.`,
          { entry: name },
        );
      }
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        reject(
          'ARCHIVE_INVALID',
          `Entry ${JSON.stringify(name)} uses compression method ${entry.compressionMethod}; only stored (0) and deflated (8) are allowed.`,
          { entry: name },
        );
      }
      checkUnicodePath(name, entry.extraFields, 'central directory');
      if (entry.compressionMethod === 0 && entry.compressedSize !== entry.uncompressedSize) {
        reject(
          'ARCHIVE_INVALID',
          `Entry ${JSON.stringify(name)} is stored but declares different compressed and uncompressed sizes.`,
          { entry: name },
        );
      }
      total += entry.uncompressedSize;
      if (total > limits.maxTotalUncompressedBytes) {
        reject(
          'ARCHIVE_TOO_LARGE',
          `The entries add up to more than ${limits.maxTotalUncompressedBytes} bytes uncompressed.`,
          { limit: limits.maxTotalUncompressedBytes },
        );
      }
      const ratio = entry.uncompressedSize / Math.max(entry.compressedSize, 1);
      if (entry.uncompressedSize > limits.ratioExemptBytes && ratio > limits.maxCompressionRatio) {
        reject(
          'ARCHIVE_TOO_LARGE',
          `Entry ${JSON.stringify(name)} expands ${Math.round(ratio)}:1 (limit ${limits.maxCompressionRatio}:1): refusing a likely zip bomb.`,
          { entry: name, ratio },
        );
      }
      entries.set(name, entry);
      folded.set(name.toLowerCase(), name);
    }
  } catch (error) {
    if (error instanceof PackageRejectedError) throw error;
    reject('ARCHIVE_INVALID', `The archive's central directory is corrupt (${messageOf(error)}).`, {}, error);
  }
  if (folder) {
    // A model directory signed with OpenSSF Model Signing keeps its folders; say so, rather
    // than call a producer's ordinary layout unsafe.
    if (entries.has(OMS_SIGNATURE_FILE))
      reject(
        'MODEL_NOT_FLAT',
        `The package carries ${OMS_SIGNATURE_FILE} and folders (${JSON.stringify(folder.name)}): it is a model directory with folders, signed with OpenSSF Model Signing, but a hotocr package is flat. Move every file of the model to its top folder, sign it again, and zip the files alone.`,
        { entry: folder.name },
      );
    reject('PATH_UNSAFE', folder.message, { entry: folder.name });
  }
  return entries;
}

async function checkLocalHeaders(
  zip: yauzl.ZipFile,
  entries: Map<string, yauzl.Entry>,
  fileSize: number,
): Promise<Map<string, number>> {
  const spans: { name: string; start: number; end: number }[] = [];
  const dataStart = new Map<string, number>();
  for (const [name, entry] of entries) {
    let header: yauzl.LocalFileHeader;
    try {
      header = await zip.readLocalFileHeaderPromise(entry);
    } catch (cause) {
      reject(
        'ARCHIVE_INVALID',
        `Entry ${JSON.stringify(name)} has no valid local header (${messageOf(cause)}).`,
        { entry: name },
        cause,
      );
    }
    const central = entry.fileName as unknown as Buffer;
    if (!header.fileName.equals(central)) {
      reject(
        'ARCHIVE_INVALID',
        `Entry ${JSON.stringify(name)} is named ${JSON.stringify(header.fileName.toString('latin1'))} in its local header; the two names must agree.`,
        { entry: name },
      );
    }
    checkUnicodePath(name, header.extraField, 'local header');
    if ((header.generalPurposeBitFlag & FLAG_ENCRYPTED) !== 0) {
      reject(
        'ARCHIVE_INVALID',
        `Entry ${JSON.stringify(name)} is encrypted; packages are signed, not encrypted.`,
        { entry: name },
      );
    }
    if (header.compressionMethod !== entry.compressionMethod) {
      reject(
        'ARCHIVE_INVALID',
        `Entry ${JSON.stringify(name)} declares a different compression method in its local header.`,
        { entry: name },
      );
    }
    const end = header.fileDataStart + entry.compressedSize;
    if (end > fileSize) {
      reject(
        'ARCHIVE_INVALID',
        `Entry ${JSON.stringify(name)} runs past the end of the archive: the file is truncated.`,
        { entry: name },
      );
    }
    spans.push({ name, start: entry.relativeOffsetOfLocalHeader, end });
    dataStart.set(name, header.fileDataStart);
  }
  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur.start < prev.end) {
      reject(
        'ARCHIVE_INVALID',
        `Entries ${JSON.stringify(prev.name)} and ${JSON.stringify(cur.name)} overlap in the archive; refusing a crafted (zip bomb style) archive.`,
        { entry: cur.name, other: prev.name },
      );
    }
  }
  return dataStart;
}
