import {
  distance,
  expandRect,
  minAreaRect,
  orderClockwise,
  type Point,
  type Quad,
  rectCorners,
} from './geometry.js';

export interface DbParams {
  /** Pixels above this probability are text. */
  readonly thresh: number;
  /** Boxes whose mean probability is below this are dropped. */
  readonly boxThresh: number;
  /** How far a box grows back out (DB shrinks text regions when training). */
  readonly unclipRatio: number;
  readonly maxCandidates: number;
  /** Boxes whose short side is below this (in probability-map pixels) are dropped. */
  readonly minSize: number;
}

/** PaddleOCR's unclip ratio, from which a larger one is measured. */
export const REFERENCE_UNCLIP = 1.5;

/** Boxes found in a probability map, and signs of text too small for the map's scale. */
export interface DbResult {
  /** In destination pixels, clockwise from top-left. */
  readonly boxes: Quad[];
  /**
   * For each box, how much smaller on every side (in destination pixels) it would be grown
   * by PaddleOCR's reference ratio, {@link REFERENCE_UNCLIP}, instead of `unclipRatio` (0
   * when not larger).
   */
  readonly insets: number[];
  /** Regions as sure as a box (mean probability at least `boxThresh`) but dropped as narrower than `minSize`. */
  readonly dropped: number;
  /** The shortest side of the narrowest box, in map pixels, margin included (Infinity when none). */
  readonly narrowest: number;
}

/**
 * DB post-processing as PaddleOCR's db_postprocess.py (fast score mode, no dilation):
 * threshold the probability map, take each connected region, its minimum-area box, score
 * it by the mean probability inside, grow it by area × unclipRatio / perimeter, and map it
 * to the destination image (its size in `destWidth` x `destHeight`).
 */
export function boxesFromProbabilityMap(
  pred: Float32Array,
  width: number,
  height: number,
  destWidth: number,
  destHeight: number,
  params: DbParams,
): DbResult {
  const regions = connectedRegions(pred, width, height, params.thresh, params.maxCandidates);
  const boxes: Quad[] = [];
  const insets: number[] = [];
  let dropped = 0;
  let narrowest = Number.POSITIVE_INFINITY;
  for (const points of regions) {
    const rect = minAreaRect(points);
    const corners = rectCorners(rect);
    if (Math.min(rect.w, rect.h) < params.minSize) {
      if (Math.max(rect.w, rect.h) >= 1 && boxScoreFast(pred, width, height, corners) >= params.boxThresh)
        dropped++;
      continue;
    }
    if (boxScoreFast(pred, width, height, corners) < params.boxThresh) continue;
    const area = rect.w * rect.h;
    const perimeter = 2 * (rect.w + rect.h);
    const grown = expandRect(rect, (area * params.unclipRatio) / perimeter);
    const inset = (area * Math.max(0, params.unclipRatio - REFERENCE_UNCLIP)) / perimeter;
    if (Math.min(grown.w, grown.h) < params.minSize + 2) continue;
    narrowest = Math.min(narrowest, grown.w, grown.h);
    const scaled = rectCorners(grown).map(
      ([x, y]) =>
        [
          Math.min(Math.max(Math.round((x / width) * destWidth), 0), destWidth),
          Math.min(Math.max(Math.round((y / height) * destHeight), 0), destHeight),
        ] as Point,
    );
    // filter_tag_det_res: clockwise order, clip to the image, drop slivers.
    const box = orderClockwise(scaled).map(
      ([x, y]) =>
        [Math.min(Math.max(x, 0), destWidth - 1), Math.min(Math.max(y, 0), destHeight - 1)] as Point,
    ) as Quad;
    if (Math.trunc(distance(box[0], box[1])) <= 3 || Math.trunc(distance(box[0], box[3])) <= 3) continue;
    boxes.push(box);
    insets.push(Math.floor(inset * Math.min(destWidth / width, destHeight / height)));
  }
  return { boxes, insets, dropped, narrowest };
}

/**
 * 8-connected regions of pixels above `thresh`, at most `max` of them, in raster order of
 * their first pixel. Each region is reduced to the leftmost and rightmost pixel of each of
 * its rows: the same convex hull as all its pixels, for a fraction of the points.
 */
function connectedRegions(
  pred: Float32Array,
  width: number,
  height: number,
  thresh: number,
  max: number,
): Point[][] {
  const label = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  const regions: Point[][] = [];
  for (let start = 0; start < pred.length && regions.length < max; start++) {
    if (label[start] !== 0 || !(pred[start]! > thresh)) continue;
    const id = regions.length + 1;
    const rowMin = new Map<number, number>();
    const rowMax = new Map<number, number>();
    let top = 0;
    stack[top++] = start;
    label[start] = id;
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % width;
      const y = (i - x) / width;
      const lo = rowMin.get(y);
      if (lo === undefined || x < lo) rowMin.set(y, x);
      const hi = rowMax.get(y);
      if (hi === undefined || x > hi) rowMax.set(y, x);
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if ((dx === 0 && dy === 0) || nx < 0 || nx >= width) continue;
          const j = ny * width + nx;
          if (label[j] === 0 && pred[j]! > thresh) {
            label[j] = id;
            stack[top++] = j;
          }
        }
      }
    }
    const points: Point[] = [];
    for (const [y, x] of rowMin) {
      points.push([x, y]);
      const x2 = rowMax.get(y)!;
      if (x2 !== x) points.push([x2, y]);
    }
    regions.push(points);
  }
  return regions;
}

/** Mean probability inside the box (PaddleOCR's box_score_fast: integer box, filled polygon). */
function boxScoreFast(pred: Float32Array, width: number, height: number, box: Quad): number {
  const pts = box.map(([x, y]) => [Math.trunc(x), Math.trunc(y)] as Point);
  const xs = box.map((p) => p[0]);
  const ys = box.map((p) => p[1]);
  const xmin = Math.min(Math.max(Math.floor(Math.min(...xs)), 0), width - 1);
  const xmax = Math.min(Math.max(Math.ceil(Math.max(...xs)), 0), width - 1);
  const ymin = Math.min(Math.max(Math.floor(Math.min(...ys)), 0), height - 1);
  const ymax = Math.min(Math.max(Math.ceil(Math.max(...ys)), 0), height - 1);
  let sum = 0;
  let count = 0;
  for (let y = ymin; y <= ymax; y++) {
    for (let x = xmin; x <= xmax; x++) {
      if (insideConvex(pts, x, y)) {
        sum += pred[y * width + x]!;
        count++;
      }
    }
  }
  return count === 0 ? 0 : sum / count;
}

/** Point in (or on) a convex polygon, whatever its winding. */
function insideConvex(poly: Point[], x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < poly.length; i++) {
    const [x1, y1] = poly[i]!;
    const [x2, y2] = poly[(i + 1) % poly.length]!;
    const c = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1);
    if (c === 0) continue;
    const s = c > 0 ? 1 : -1;
    if (sign === 0) sign = s;
    else if (s !== sign) return false;
  }
  return true;
}
