import { readFile } from 'node:fs/promises';
import { messageOf, PackageRejectedError } from '../errors.js';
import type { ServedModel } from '../loaders/index.js';
import { decodeImage, type RgbImage } from '../ocr/index.js';
import type { Manifest } from '../package/index.js';

/** The built-in warm-up image (assets/warmup.png): one line, "hotocr warm-up 2026". */
const WARMUP_IMAGE = new URL('../../../assets/warmup.png', import.meta.url);
let decoded: Promise<RgbImage> | undefined;

/**
 * Reads the built-in image with a freshly loaded version before it may serve; where the
 * manifest gives `warmup.expect`, the text read (spaces aside) must equal it.
 * Throws WARMUP_FAILED otherwise.
 */
export async function warmUp(model: ServedModel, manifest: Manifest): Promise<void> {
  decoded ??= readFile(WARMUP_IMAGE).then((bytes) => decodeImage(bytes));
  let text: string;
  try {
    const result = await model.read(await decoded);
    text = result.lines.map((l) => l.text).join('\n');
  } catch (cause) {
    throw new PackageRejectedError('WARMUP_FAILED', `The warm-up inference failed: ${messageOf(cause)}`, {
      cause,
    });
  }
  const expect = manifest.warmup?.expect;
  if (expect !== undefined && expect.replace(/\s+/g, '') !== text.replace(/\s+/g, '')) {
    throw new PackageRejectedError(
      'WARMUP_FAILED',
      `The warm-up image reads ${JSON.stringify(text)}, not ${JSON.stringify(expect)} as config.json's warmup.expect says.`,
      { details: { expected: expect, actual: text } },
    );
  }
}
