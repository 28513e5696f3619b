import type { RgbImage } from './image.js';

/** An image with a border added, and where the original sits in it. */
export interface Padded {
  readonly image: RgbImage;
  readonly left: number;
  readonly top: number;
}

/**
 * The colour of an image's border: the median of each channel over its outermost rows and
 * columns. Text touching the border takes up little of it, so this is the background.
 */
export function borderColour(img: RgbImage): [number, number, number] {
  const { width: w, height: h, data } = img;
  const hist = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  let n = 0;
  const add = (x: number, y: number) => {
    const i = (y * w + x) * 3;
    hist[0]![data[i]!]!++;
    hist[1]![data[i + 1]!]!++;
    hist[2]![data[i + 2]!]!++;
    n++;
  };
  for (let x = 0; x < w; x++) {
    add(x, 0);
    if (h > 1) add(x, h - 1);
  }
  for (let y = 1; y < h - 1; y++) {
    add(0, y);
    if (w > 1) add(w - 1, y);
  }
  return hist.map((counts) => {
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += counts[v]!;
      if (seen * 2 >= n) return v;
    }
    return 255;
  }) as [number, number, number];
}

/** `img` with `top`, `bottom`, `left` and `right` pixels of `colour` around it. */
export function pad(
  img: RgbImage,
  top: number,
  bottom: number,
  left: number,
  right: number,
  colour: readonly [number, number, number],
): RgbImage {
  const width = img.width + left + right;
  const height = img.height + top + bottom;
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(colour, p * 3);
  for (let y = 0; y < img.height; y++) {
    data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + top) * width + left) * 3);
  }
  return { data, width, height };
}

/**
 * Images the detector sees too little of, padded with their own border colour: an image no
 * more than {@link LINE_HEIGHT} pixels high, or more than {@link WIDE} times as wide as high,
 * is one line, often cut close to its text; the detector, trained on pages, needs room
 * around a line to find it whole. Such an image gets one line height of margin left and
 * right, and enough above and below to be at most {@link WIDE} / 2 times as wide as high
 * (RapidOCR pads wide images the same way). Others are left as they are.
 */
export function padForDetection(img: RgbImage): Padded {
  const { width: w, height: h } = img;
  if (h > LINE_HEIGHT && w <= WIDE * h) return { image: img, left: 0, top: 0 };
  const side = h;
  const wanted = Math.max(3 * h, Math.ceil((w + 2 * side) / (WIDE / 2)));
  const top = Math.ceil((wanted - h) / 2);
  const colour = borderColour(img);
  return { image: pad(img, top, wanted - h - top, side, side, colour), left: side, top };
}

/** Images up to this many pixels high are taken for a single line. */
export const LINE_HEIGHT = 64;
/** Images more than this many times as wide as high are taken for a single line. */
export const WIDE = 8;
