import sharp from 'sharp';
import type { RgbImage } from '../ocr/index.js';

/** A rendered page as a JPEG `data:` URL, at its own size, so that boxes drawn over it land where they were read. */
export async function jpegDataUrl(image: RgbImage, quality = 70): Promise<string> {
  const jpeg = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}
