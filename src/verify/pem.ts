/** One `-----BEGIN TYPE-----` block of a PEM file. */
export interface PemBlock {
  readonly type: string;
  readonly der: Buffer;
  readonly text: string;
  /** The text since the previous block (or the start): where a block's notes are written. */
  readonly before: string;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Splits PEM text into its blocks, in order. Text between blocks is ignored, as openssl does. */
export function parsePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let previousEnd = 0;
  for (const match of text.matchAll(BLOCK)) {
    const [whole, type, body] = match as unknown as [string, string, string];
    const before = text.slice(previousEnd, match.index);
    previousEnd = match.index + whole.length;
    blocks.push({ type, der: Buffer.from(body.replace(/\s+/g, ''), 'base64'), text: whole, before });
  }
  return blocks;
}
