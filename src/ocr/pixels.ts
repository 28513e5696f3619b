import type { Point, Quad } from './geometry.js';
import type { RgbImage } from './image.js';

/**
 * The source pixel and weight for destination index `d` along one axis, as OpenCV's
 * INTER_LINEAR: half-pixel centres, clamped at the edges.
 */
function linearTap(d: number, scale: number, size: number): [number, number] {
  let f = (d + 0.5) * scale - 0.5;
  let i = Math.floor(f);
  f -= i;
  if (i < 0) {
    i = 0;
    f = 0;
  }
  if (i >= size - 1) {
    i = size - 1;
    f = 0;
  }
  return [i, f];
}

/** Bilinear resize with OpenCV's INTER_LINEAR conventions (half-pixel centres, edge clamp). */
export function resizeBilinear(src: RgbImage, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const sx = src.width / width;
  const sy = src.height / height;
  const x0 = new Int32Array(width);
  const x1 = new Int32Array(width);
  const fx = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const [i, f] = linearTap(x, sx, src.width);
    x0[x] = i * 3;
    x1[x] = Math.min(i + 1, src.width - 1) * 3;
    fx[x] = f;
  }
  const s = src.data;
  const rowStride = src.width * 3;
  for (let y = 0; y < height; y++) {
    const [j, fy] = linearTap(y, sy, src.height);
    const r0 = j * rowStride;
    const r1 = Math.min(j + 1, src.height - 1) * rowStride;
    let o = y * width * 3;
    for (let x = 0; x < width; x++) {
      const a = x0[x]!;
      const b = x1[x]!;
      const wx = fx[x]!;
      for (let c = 0; c < 3; c++) {
        const top = s[r0 + a + c]! + (s[r0 + b + c]! - s[r0 + a + c]!) * wx;
        const bottom = s[r1 + a + c]! + (s[r1 + b + c]! - s[r1 + a + c]!) * wx;
        out[o++] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  return { data: out, width, height };
}

/** Homography taking the four `from` points to the four `to` points (solved as an 8x8 system). */
function homography(from: Point[], to: Point[]): number[] {
  const a: number[][] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i]!;
    const [u, v] = to[i]!;
    a.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    a.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  for (let col = 0; col < 8; col++) {
    let pivot = col;
    for (let r = col + 1; r < 8; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const p = a[col]![col]!;
    if (Math.abs(p) < 1e-12) return [1, 0, 0, 0, 1, 0, 0, 0];
    for (let k = col; k < 9; k++) a[col]![k]! /= p;
    for (let r = 0; r < 8; r++) {
      if (r === col) continue;
      const f = a[r]![col]!;
      if (f === 0) continue;
      for (let k = col; k < 9; k++) a[r]![k]! -= f * a[col]![k]!;
    }
  }
  return a.map((row) => row[8]!);
}

/** OpenCV's bicubic kernel (a = -0.75). */
function cubicWeights(t: number, w: Float64Array): void {
  const A = -0.75;
  const x0 = t + 1;
  const x1 = t;
  const x2 = 1 - t;
  w[0] = ((A * x0 - 5 * A) * x0 + 8 * A) * x0 - 4 * A;
  w[1] = ((A + 2) * x1 - (A + 3)) * x1 * x1 + 1;
  w[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
  w[3] = 1 - w[0] - w[1] - w[2];
}

/**
 * Cuts the quadrilateral `quad` out of `src` into an upright width × height image, as
 * PaddleOCR's get_rotate_crop_image: perspective transform, bicubic, replicated border.
 */
export function warpQuad(src: RgbImage, quad: Quad, width: number, height: number): RgbImage {
  const h = homography(
    [
      [0, 0],
      [width, 0],
      [width, height],
      [0, height],
    ],
    quad,
  );
  const out = new Uint8Array(width * height * 3);
  const wx = new Float64Array(4);
  const wy = new Float64Array(4);
  const s = src.data;
  const maxX = src.width - 1;
  const maxY = src.height - 1;
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = h[6]! * x + h[7]! * y + 1;
      const fx = (h[0]! * x + h[1]! * y + h[2]!) / d;
      const fy = (h[3]! * x + h[4]! * y + h[5]!) / d;
      const ix = Math.floor(fx);
      const iy = Math.floor(fy);
      cubicWeights(fx - ix, wx);
      cubicWeights(fy - iy, wy);
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let m = 0; m < 4; m++) {
          const yy = Math.min(Math.max(iy - 1 + m, 0), maxY) * src.width;
          let row = 0;
          for (let n = 0; n < 4; n++) {
            const xx = Math.min(Math.max(ix - 1 + n, 0), maxX);
            row += s[(yy + xx) * 3 + c]! * wx[n]!;
          }
          acc += row * wy[m]!;
        }
        out[o++] = acc < 0 ? 0 : acc > 255 ? 255 : Math.round(acc);
      }
    }
  }
  return { data: out, width, height };
}

/** Rotates 90° counter-clockwise (numpy's rot90). */
export function rotate90ccw(src: RgbImage): RgbImage {
  const { width: w, height: h } = src;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = ((w - 1 - x) * h + y) * 3;
      const i = (y * w + x) * 3;
      out[o] = src.data[i]!;
      out[o + 1] = src.data[i + 1]!;
      out[o + 2] = src.data[i + 2]!;
    }
  }
  return { data: out, width: h, height: w };
}

/** Rotates 180°. */
export function rotate180(src: RgbImage): RgbImage {
  const n = src.width * src.height;
  const out = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const i = p * 3;
    const o = (n - 1 - p) * 3;
    out[o] = src.data[i]!;
    out[o + 1] = src.data[i + 1]!;
    out[o + 2] = src.data[i + 2]!;
  }
  return { data: out, width: src.width, height: src.height };
}
