import type { RgbImage } from './image.js';

/**
 * The rows of a line's crop that hold its text: the longest run of rows with ink (pixels
 * far from the crop's border colour) that contains the most ink, as [top, bottom). Undefined
 * when the crop shows no clear ink.
 */
export function inkRows(crop: RgbImage): [number, number] | undefined {
  const { width: w, height: h, data } = crop;
  if (w < 4 || h < 4) return undefined;
  const lum = new Float32Array(w * h);
  for (let p = 0; p < w * h; p++)
    lum[p] = 0.299 * data[p * 3]! + 0.587 * data[p * 3 + 1]! + 0.114 * data[p * 3 + 2]!;
  // The background: the median of the top and bottom rows.
  const border: number[] = [];
  for (let x = 0; x < w; x++) border.push(lum[x]!, lum[(h - 1) * w + x]!);
  border.sort((a, b) => a - b);
  const bg = border[border.length >> 1]!;
  let far = 0;
  for (let p = 0; p < w * h; p++) far = Math.max(far, Math.abs(lum[p]! - bg));
  if (far < 48) return undefined;
  const cut = far / 2;
  const rows = new Float32Array(h);
  for (let y = 0; y < h; y++) {
    let n = 0;
    for (let x = 0; x < w; x++) if (Math.abs(lum[y * w + x]! - bg) > cut) n++;
    rows[y] = n;
  }
  // Rows with ink: more than 1% of the width (a stray speck is not a row of text).
  const min = Math.max(1, w * 0.01);
  let best: [number, number] | undefined;
  let bestInk = 0;
  for (let y = 0; y < h; ) {
    if (rows[y]! < min) {
      y++;
      continue;
    }
    const top = y;
    let ink = 0;
    while (y < h && rows[y]! >= min) ink += rows[y++]!;
    if (ink > bestInk) {
      bestInk = ink;
      best = [top, y];
    }
  }
  return best;
}

/**
 * A crop cut down to its text's rows and a margin of a quarter of their height above and
 * below; the crop itself when the text already fills most of it.
 */
export function tightenToInk(crop: RgbImage): RgbImage {
  const band = inkRows(crop);
  if (!band) return crop;
  const [top, bottom] = band;
  const margin = Math.ceil((bottom - top) / 4);
  const from = Math.max(0, top - margin);
  const to = Math.min(crop.height, bottom + margin);
  if ((to - from) / crop.height > 0.8) return crop;
  return {
    data: crop.data.slice(from * crop.width * 3, to * crop.width * 3),
    width: crop.width,
    height: to - from,
  };
}
