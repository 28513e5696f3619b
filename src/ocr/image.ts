import sharp, { type Metadata } from 'sharp';
import { ImageError, messageOf } from '../errors.js';

/** An 8-bit RGB image, pixels interleaved row by row. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

export interface DecodeLimits {
  /** Largest accepted width × height (default 36 megapixels). */
  readonly maxPixels?: number;
  /** Smallest accepted width and height (default 8). */
  readonly minSide?: number;
  /** The page of a multi-page TIFF to decode, from 0 (default the first). */
  readonly page?: number;
}

const FORMATS = new Set(['png', 'jpeg', 'webp', 'tiff']);
export const DEFAULT_MAX_PIXELS = 36_000_000;

/**
 * Decodes PNG, JPEG, WebP or TIFF bytes to RGB: EXIF orientation applied, transparency
 * flattened onto white (text on a transparent background stays readable), grey and CMYK
 * converted. Refuses anything else with a stable code before decoding a pixel.
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits = {}): Promise<RgbImage> {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const minSide = limits.minSide ?? 8;
  const page = limits.page ?? 0;
  if (bytes.length === 0) throw new ImageError('IMAGE_INVALID', 'The image is empty (0 bytes).');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, page }).metadata();
  } catch (cause) {
    throw new ImageError(
      'IMAGE_INVALID',
      'The bytes are not an image hotocr can read (PNG, JPEG, WebP or TIFF).',
      { cause },
    );
  }
  if (!meta.format || !FORMATS.has(meta.format)) {
    throw new ImageError(
      'IMAGE_UNSUPPORTED',
      `${meta.format ?? 'This'} images are not accepted; send PNG, JPEG, WebP or TIFF.`,
      {
        details: { format: meta.format },
      },
    );
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height > maxPixels) {
    throw new ImageError(
      'IMAGE_TOO_LARGE',
      `The image is ${width}x${height} (${((width * height) / 1e6).toFixed(1)} megapixels); at most ${(maxPixels / 1e6).toFixed(0)} megapixels are accepted.`,
      {
        details: { width, height, maxPixels },
      },
    );
  }
  if (width < minSide || height < minSide) {
    throw new ImageError(
      'IMAGE_TOO_SMALL',
      `The image is ${width}x${height}; both sides must be at least ${minSide} pixels to hold text.`,
      {
        details: { width, height, minSide },
      },
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', page })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    };
  } catch (cause) {
    throw new ImageError(
      'IMAGE_INVALID',
      `The ${meta.format} image is corrupt or truncated (${messageOf(cause)}).`,
      { cause },
    );
  }
}
