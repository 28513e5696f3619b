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
}

const FORMATS = new Set(['png', 'jpeg', 'webp', 'tiff']);
export const DEFAULT_MAX_PIXELS = 36_000_000;

/**
 * Decodes PNG, JPEG, WebP or TIFF bytes to 8-bit RGB: EXIF orientation applied, grey, grey
 * with alpha, CMYK and 16-bit images converted, transparency flattened onto a background that
 * keeps what is drawn visible ({@link flattenBackground}). Refuses anything else with a
 * stable code before decoding a pixel.
 */
export async function decodeImage(bytes: Uint8Array, limits: DecodeLimits = {}): Promise<RgbImage> {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const minSide = limits.minSide ?? 8;
  if (bytes.length === 0) throw new ImageError('IMAGE_INVALID', 'The image is empty (0 bytes).');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
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
    const image = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .toColourspace('srgb');
    if (meta.hasAlpha) {
      const { data, info } = await image
        .ensureAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`decoded to ${info.channels} channels`);
      return flatten(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
    }
    const { data, info } = await image
      .removeAlpha()
      .raw({ depth: 'uchar' })
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

/** Rec. 601 luma of an sRGB pixel, 0..255. */
const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

/**
 * The background a transparent image is flattened onto: black when what is drawn (its
 * pixels weighted by their opacity) is light on average, white otherwise. A fixed white
 * hides white text on a transparent background; a fixed black (what OpenCV's decoder gives)
 * hides black text. A fully transparent image gets white.
 */
export function flattenBackground(rgba: Uint8Array): 0 | 255 {
  let weighted = 0;
  let opacity = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    const a = rgba[i + 3]!;
    if (a === 0) continue;
    weighted += a * luma(rgba[i]!, rgba[i + 1]!, rgba[i + 2]!);
    opacity += a;
  }
  return opacity > 0 && weighted / opacity >= 128 ? 0 : 255;
}

/** Composites RGBA pixels over the background {@link flattenBackground} picks. */
function flatten(rgba: Uint8Array, width: number, height: number): RgbImage {
  const bg = flattenBackground(rgba);
  const out = new Uint8Array(width * height * 3);
  for (let p = 0, i = 0; i < rgba.length; i += 4, p += 3) {
    const a = rgba[i + 3]! / 255;
    const keep = bg * (1 - a);
    out[p] = Math.round(rgba[i]! * a + keep);
    out[p + 1] = Math.round(rgba[i + 1]! * a + keep);
    out[p + 2] = Math.round(rgba[i + 2]! * a + keep);
  }
  return { data: out, width, height };
}
