/** What a body holds, told by its first bytes (never by the Content-Type alone). */
export type BodyKind = 'pdf' | 'tiff' | 'other';

/** PDF files start with `%PDF-`; readers allow junk before it in the first kilobyte. */
export function isPdf(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 1024));
  return head.includes('%PDF-');
}

export function isTiff(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    ((bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 0x2a && bytes[3] === 0x00) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0x00 && bytes[3] === 0x2a))
  );
}

export function bodyKind(bytes: Uint8Array): BodyKind {
  if (isPdf(bytes)) return 'pdf';
  if (isTiff(bytes)) return 'tiff';
  return 'other';
}
