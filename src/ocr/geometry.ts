/** A point [x, y]. */
export type Point = [number, number];
/** Four corners: top-left, top-right, bottom-right, bottom-left. */
export type Quad = [Point, Point, Point, Point];

/** Convex hull (Andrew's monotone chain), counter-clockwise, no collinear points. */
export function convexHull(points: Point[]): Point[] {
  if (points.length < 3) return points.slice();
  const sorted = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: Point, a: Point, b: Point) =>
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const p of sorted) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0)
      lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = sorted.length - 1; i >= 0; i--) {
    const p = sorted[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0)
      upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/** A rotated rectangle: centre, side lengths along its own axes, and its axis unit vector. */
export interface RotatedRect {
  readonly cx: number;
  readonly cy: number;
  readonly w: number;
  readonly h: number;
  /** Unit vector of the `w` side. */
  readonly ux: number;
  readonly uy: number;
}

/** The minimum-area rectangle around `points` (rotating calipers over the hull), like cv2.minAreaRect. */
export function minAreaRect(points: Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 1) return { cx: hull[0]![0], cy: hull[0]![1], w: 0, h: 0, ux: 1, uy: 0 };
  let best: RotatedRect | undefined;
  let bestArea = Number.POSITIVE_INFINITY;
  for (let i = 0; i < hull.length; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    if (len === 0) continue;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    let minU = Number.POSITIVE_INFINITY;
    let maxU = Number.NEGATIVE_INFINITY;
    let minV = Number.POSITIVE_INFINITY;
    let maxV = Number.NEGATIVE_INFINITY;
    for (const p of hull) {
      const u = p[0] * ux + p[1] * uy;
      const v = -p[0] * uy + p[1] * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { cx: cu * ux - cv * uy, cy: cu * uy + cv * ux, w: maxU - minU, h: maxV - minV, ux, uy };
    }
  }
  return best!;
}

/** The rectangle grown by `d` on every side (what unclipping a rectangle by `d` and taking its minAreaRect gives). */
export function expandRect(r: RotatedRect, d: number): RotatedRect {
  return { ...r, w: r.w + 2 * d, h: r.h + 2 * d };
}

/**
 * The rectangle's corners ordered as PaddleOCR's get_mini_boxes does: of the two leftmost,
 * the upper is top-left; of the two rightmost, the upper is top-right.
 */
export function rectCorners(r: RotatedRect): Quad {
  const hw = r.w / 2;
  const hh = r.h / 2;
  const vx = -r.uy;
  const vy = r.ux;
  const pts: Point[] = [
    [r.cx - hw * r.ux - hh * vx, r.cy - hw * r.uy - hh * vy],
    [r.cx + hw * r.ux - hh * vx, r.cy + hw * r.uy - hh * vy],
    [r.cx + hw * r.ux + hh * vx, r.cy + hw * r.uy + hh * vy],
    [r.cx - hw * r.ux + hh * vx, r.cy - hw * r.uy + hh * vy],
  ];
  pts.sort((a, b) => a[0] - b[0]);
  const [l1, l2, r1, r2] = pts as [Point, Point, Point, Point];
  const [tl, bl] = l1[1] <= l2[1] ? [l1, l2] : [l2, l1];
  const [tr, br] = r1[1] <= r2[1] ? [r1, r2] : [r2, r1];
  return [tl, tr, br, bl];
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/** Orders four points clockwise from the top-left, as PaddleOCR's order_points_clockwise. */
export function orderClockwise(pts: Point[]): Quad {
  const byX = pts.slice().sort((a, b) => a[0] - b[0]);
  const left = byX.slice(0, 2).sort((a, b) => a[1] - b[1]);
  const right = byX.slice(2, 4).sort((a, b) => a[1] - b[1]);
  return [left[0]!, right[0]!, right[1]!, left[1]!];
}

/**
 * Reading order, as PaddleOCR's sorted_boxes: by top-left y then x, then boxes whose tops
 * are within 10 pixels are treated as one line and ordered left to right.
 */
export function sortReadingOrder<T extends { box: Quad }>(items: T[]): T[] {
  const sorted = items.slice().sort((a, b) => a.box[0][1] - b.box[0][1] || a.box[0][0] - b.box[0][0]);
  for (let i = 0; i < sorted.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const a = sorted[j]!;
      const b = sorted[j + 1]!;
      if (Math.abs(b.box[0][1] - a.box[0][1]) < 10 && b.box[0][0] < a.box[0][0]) {
        sorted[j] = b;
        sorted[j + 1] = a;
      } else break;
    }
  }
  return sorted;
}

/** The median of a non-empty list. */
function median(values: number[]): number {
  const s = values.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Reading order by lines: boxes are grouped into lines along the text's slant (the median
 * angle of the boxes' top edges), a box joining the line above when its centre lies within
 * half the smaller height of that line's; lines are read top to bottom, each left to right.
 * Unlike {@link sortReadingOrder}, the cells of a table row and the words of a line on a
 * slanted page stay together and in order.
 */
export function sortByLines<T extends { box: Quad }>(items: T[]): T[] {
  if (items.length < 2) return items.slice();
  const angles = items
    .filter(({ box }) => distance(box[0], box[1]) >= distance(box[0], box[3]))
    .map(({ box }) => Math.atan2(box[1][1] - box[0][1], box[1][0] - box[0][0]));
  const angle = angles.length > 0 ? median(angles) : 0;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const placed = items.map((item) => {
    const us = item.box.map(([x, y]) => x * cos + y * sin);
    const vs = item.box.map(([x, y]) => -x * sin + y * cos);
    const top = Math.min(...vs);
    const bottom = Math.max(...vs);
    return { item, left: Math.min(...us), middle: (top + bottom) / 2, height: bottom - top };
  });
  placed.sort((a, b) => a.middle - b.middle || a.left - b.left);
  const lines: { middle: number; height: number; members: typeof placed }[] = [];
  for (const p of placed) {
    const line = lines[lines.length - 1];
    if (line && Math.abs(p.middle - line.middle) <= Math.min(p.height, line.height) / 2) {
      line.members.push(p);
      line.middle += (p.middle - line.middle) / line.members.length;
      line.height = Math.max(line.height, p.height);
    } else {
      lines.push({ middle: p.middle, height: p.height, members: [p] });
    }
  }
  return lines.flatMap((l) => l.members.sort((a, b) => a.left - b.left).map((p) => p.item));
}

/** A box as seen with the image turned by 180 degrees (corners still clockwise from top-left). */
export function turned(box: Quad): Quad {
  const t = ([x, y]: Point): Point => [-x, -y];
  return [t(box[2]), t(box[3]), t(box[0]), t(box[1])];
}

/** A box grown above and below, and by how much on each side. */
export interface Grown {
  readonly box: Quad;
  readonly above: number;
  readonly below: number;
}

/**
 * Each box grown above and below by up to `fraction` of its height, into free space only:
 * at most half the gap to the nearest box above or below it that overlaps it along the
 * line (so two neighbours share the gap between them). Only boxes at least as wide as high
 * grow. Boxes are rectangles, corners clockwise from top-left.
 */
export function growIntoFreeSpace(boxes: readonly Quad[], fraction: number): Grown[] {
  const frames = boxes.map((box) => {
    const h = distance(box[0], box[3]);
    const w = distance(box[0], box[1]);
    const ux = w > 0 ? (box[1][0] - box[0][0]) / w : 1;
    const uy = w > 0 ? (box[1][1] - box[0][1]) / w : 0;
    return { box, h, w, ux, uy };
  });
  return frames.map(({ box, h, w, ux, uy }, i) => {
    if (h <= 0 || h > w) return { box, above: 0, below: 0 };
    // Coordinates along (u) and across (v, downwards) this box's line.
    const vx = -uy;
    const vy = ux;
    const u = (p: Point) => p[0] * ux + p[1] * uy;
    const v = (p: Point) => p[0] * vx + p[1] * vy;
    const left = Math.min(u(box[0]), u(box[3]));
    const right = Math.max(u(box[1]), u(box[2]));
    const top = Math.min(v(box[0]), v(box[1]));
    const bottom = Math.max(v(box[2]), v(box[3]));
    let above = fraction * h;
    let below = fraction * h;
    frames.forEach((other, j) => {
      if (j === i) return;
      const us = other.box.map(u);
      if (Math.max(...us) <= left || Math.min(...us) >= right) return;
      const vs = other.box.map(v);
      const oTop = Math.min(...vs);
      const oBottom = Math.max(...vs);
      if (oBottom <= top) above = Math.min(above, (top - oBottom) / 2);
      else if (oTop >= bottom) below = Math.min(below, (oTop - bottom) / 2);
      // Overlapping already: no room on the side the other box's middle is on.
      else if ((oTop + oBottom) / 2 < (top + bottom) / 2) above = 0;
      else below = 0;
    });
    above = Math.floor(above);
    below = Math.floor(below);
    const move = (p: Point, d: number): Point => [p[0] + vx * d, p[1] + vy * d];
    return {
      box: [move(box[0], -above), move(box[1], -above), move(box[2], below), move(box[3], below)],
      above,
      below,
    };
  });
}
