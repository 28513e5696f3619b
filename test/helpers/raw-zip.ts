import { crc32, deflateRawSync } from 'node:zlib';

/** One entry of a hand-made ZIP; every field a hostile archive might lie about can be set. */
export interface RawEntry {
  name: string | Buffer;
  data: Buffer;
  /** 0 stored (default), 8 deflated. */
  method?: 0 | 8;
  /** A different name in the local header than in the central directory. */
  localName?: string;
  /** Unix mode in the external attributes (e.g. 0o120777 for a symlink). */
  unixMode?: number;
  flags?: number;
  /** Uncompressed size to declare instead of the real one. */
  declaredSize?: number;
  /** Extra fields of the central directory record, and of the local header. */
  extra?: Buffer;
  localExtra?: Buffer;
}

/** An Info-ZIP Unicode Path extra field (0x7075) giving `unicode` for an entry named `name`. */
export function unicodePathField(name: string, unicode: string): Buffer {
  const value = Buffer.from(unicode, 'utf8');
  const field = Buffer.alloc(9 + value.length);
  field.writeUInt16LE(0x7075, 0);
  field.writeUInt16LE(5 + value.length, 2);
  field.writeUInt8(1, 4);
  field.writeUInt32LE(crc32(Buffer.from(name, 'utf8')), 5);
  value.copy(field, 9);
  return field;
}

function localHeader(name: Buffer, e: RawEntry, compressed: Buffer, crc: number, size: number): Buffer {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(e.flags ?? 0, 6);
  h.writeUInt16LE(e.method ?? 0, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt16LE(0x21, 12);
  h.writeUInt32LE(crc, 14);
  h.writeUInt32LE(compressed.length, 18);
  h.writeUInt32LE(size, 22);
  h.writeUInt16LE(name.length, 26);
  h.writeUInt16LE(e.localExtra?.length ?? 0, 28);
  return Buffer.concat([h, name, e.localExtra ?? Buffer.alloc(0)]);
}

function centralHeader(
  name: Buffer,
  e: RawEntry,
  compressedSize: number,
  crc: number,
  size: number,
  offset: number,
): Buffer {
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE((3 << 8) | 20, 4);
  h.writeUInt16LE(20, 6);
  h.writeUInt16LE(e.flags ?? 0, 8);
  h.writeUInt16LE(e.method ?? 0, 10);
  h.writeUInt16LE(0, 12);
  h.writeUInt16LE(0x21, 14);
  h.writeUInt32LE(crc, 16);
  h.writeUInt32LE(compressedSize, 20);
  h.writeUInt32LE(size, 24);
  h.writeUInt16LE(name.length, 28);
  h.writeUInt16LE(e.extra?.length ?? 0, 30);
  h.writeUInt32LE(((e.unixMode ?? 0o100644) << 16) >>> 0, 38);
  h.writeUInt32LE(offset, 42);
  return Buffer.concat([h, name, e.extra ?? Buffer.alloc(0)]);
}

function endOfCentralDirectory(count: number, size: number, offset: number): Buffer {
  const h = Buffer.alloc(22);
  h.writeUInt32LE(0x06054b50, 0);
  h.writeUInt16LE(count, 8);
  h.writeUInt16LE(count, 10);
  h.writeUInt32LE(size, 12);
  h.writeUInt32LE(offset, 16);
  return h;
}

const asBuffer = (name: string | Buffer) => (typeof name === 'string' ? Buffer.from(name, 'utf8') : name);

/** Builds a ZIP from entries exactly as described, however invalid. */
export function makeZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = asBuffer(e.name);
    const compressed = e.method === 8 ? deflateRawSync(e.data) : e.data;
    const crc = crc32(e.data);
    const size = e.declaredSize ?? e.data.length;
    const local = Buffer.concat([
      localHeader(asBuffer(e.localName ?? e.name), e, compressed, crc, size),
      compressed,
    ]);
    centrals.push(centralHeader(name, e, compressed.length, crc, size, offset));
    locals.push(local);
    offset += local.length;
  }
  const cd = Buffer.concat(centrals);
  return Buffer.concat([...locals, cd, endOfCentralDirectory(entries.length, cd.length, offset)]);
}

/**
 * Two entries whose bytes overlap: the first (stored) entry's data is the whole second entry,
 * local header included; the trick behind non-recursive zip bombs.
 */
export function makeOverlappingZip(): Buffer {
  const inner = { name: 'b.txt', data: Buffer.from('hello') } satisfies RawEntry;
  const innerName = asBuffer(inner.name);
  const innerCrc = crc32(inner.data);
  const innerLocal = Buffer.concat([
    localHeader(innerName, inner, inner.data, innerCrc, inner.data.length),
    inner.data,
  ]);
  const outer = { name: 'a.txt', data: innerLocal } satisfies RawEntry;
  const outerName = asBuffer(outer.name);
  const outerCrc = crc32(innerLocal);
  const outerLocalHeader = localHeader(outerName, outer, innerLocal, outerCrc, innerLocal.length);
  const body = Buffer.concat([outerLocalHeader, innerLocal]);
  const cd = Buffer.concat([
    centralHeader(outerName, outer, innerLocal.length, outerCrc, innerLocal.length, 0),
    centralHeader(innerName, inner, inner.data.length, innerCrc, inner.data.length, outerLocalHeader.length),
  ]);
  return Buffer.concat([body, cd, endOfCentralDirectory(2, cd.length, body.length)]);
}
