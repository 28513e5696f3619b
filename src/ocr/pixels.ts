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
function cubicWeights(t: number, w: Float64Array, A = -0.75): void {
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

/**
 * Bicubic resize with OpenCV's INTER_CUBIC conventions (a = -0.75, half-pixel centres,
 * replicated edges). Used to enlarge: a line enlarged bicubically keeps the gaps between its
 * words clearer than bilinearly.
 */
export function resizeBicubic(src: RgbImage, width: number, height: number, a = -0.75): RgbImage {
  const taps = (dst: number, size: number) => {
    const scale = size / dst;
    const index = new Int32Array(dst * 4);
    const weight = new Float32Array(dst * 4);
    const w = new Float64Array(4);
    for (let d = 0; d < dst; d++) {
      const f = (d + 0.5) * scale - 0.5;
      const i = Math.floor(f);
      cubicWeights(f - i, w, a);
      for (let k = 0; k < 4; k++) {
        index[d * 4 + k] = Math.min(Math.max(i - 1 + k, 0), size - 1);
        weight[d * 4 + k] = w[k]!;
      }
    }
    return { index, weight };
  };
  const xs = taps(width, src.width);
  const ys = taps(height, src.height);
  // Horizontal pass into floats, then vertical.
  const tmp = new Float32Array(src.height * width * 3);
  for (let y = 0; y < src.height; y++) {
    const row = y * src.width * 3;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = 0; k < 4; k++)
          acc += src.data[row + xs.index[x * 4 + k]! * 3 + c]! * xs.weight[x * 4 + k]!;
        tmp[(y * width + x) * 3 + c] = acc;
      }
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width * 3; x++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += tmp[ys.index[y * 4 + k]! * width * 3 + x]! * ys.weight[y * 4 + k]!;
      out[y * width * 3 + x] = acc < 0 ? 0 : acc > 255 ? 255 : Math.round(acc);
    }
  }
  return { data: out, width, height };
}

/**
 * Area resize (OpenCV's INTER_AREA for shrinking): each destination pixel is the mean of the
 * source pixels it covers, in part or whole. Used to shrink: it does not alias fine strokes
 * away as a bilinear resize does.
 */
export function resizeArea(src: RgbImage, width: number, height: number): RgbImage {
  const spans = (dst: number, size: number) => {
    const scale = size / dst;
    const list: { from: number; to: number; parts: Float32Array }[] = [];
    for (let d = 0; d < dst; d++) {
      const a = d * scale;
      const b = Math.min((d + 1) * scale, size);
      const from = Math.floor(a);
      const to = Math.min(Math.ceil(b), size);
      const parts = new Float32Array(to - from);
      for (let s = from; s < to; s++) parts[s - from] = (Math.min(b, s + 1) - Math.max(a, s)) / (b - a);
      list.push({ from, to, parts });
    }
    return list;
  };
  const xs = spans(width, src.width);
  const ys = spans(height, src.height);
  const tmp = new Float32Array(src.height * width * 3);
  for (let y = 0; y < src.height; y++) {
    const row = y * src.width * 3;
    for (let x = 0; x < width; x++) {
      const { from, to, parts } = xs[x]!;
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let s = from; s < to; s++) acc += src.data[row + s * 3 + c]! * parts[s - from]!;
        tmp[(y * width + x) * 3 + c] = acc;
      }
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const { from, to, parts } = ys[y]!;
    for (let x = 0; x < width * 3; x++) {
      let acc = 0;
      for (let s = from; s < to; s++) acc += tmp[s * width * 3 + x]! * parts[s - from]!;
      out[y * width * 3 + x] = Math.round(acc);
    }
  }
  return { data: out, width, height };
}
