import assert from 'node:assert/strict';
import { test } from 'node:test';
import { growIntoFreeSpace, type Quad, sortByLines, sortReadingOrder } from './geometry.js';

/** An axis-aligned box, or one turned by `angle` radians about the origin. */
function box(x: number, y: number, w: number, h: number, angle = 0): Quad {
  const turn = ([px, py]: [number, number]): [number, number] => [
    px * Math.cos(angle) - py * Math.sin(angle),
    px * Math.sin(angle) + py * Math.cos(angle),
  ];
  return [turn([x, y]), turn([x + w, y]), turn([x + w, y + h]), turn([x, y + h])];
}

test('reading by lines keeps the cells of a slanted table row together and in order', () => {
  // Two rows of three cells, 35 px apart, on a page turned by 3 degrees: across 800 px a row
  // drops 42 px, below the next row's start.
  const angle = (3 * Math.PI) / 180;
  const cells = [
    { name: 'a1', box: box(0, 0, 100, 30, angle) },
    { name: 'a2', box: box(400, 0, 100, 30, angle) },
    { name: 'a3', box: box(800, 0, 100, 30, angle) },
    { name: 'b1', box: box(0, 35, 100, 30, angle) },
    { name: 'b2', box: box(400, 35, 100, 30, angle) },
    { name: 'b3', box: box(800, 35, 100, 30, angle) },
  ];
  const shuffled = [cells[5]!, cells[0]!, cells[3]!, cells[2]!, cells[4]!, cells[1]!];
  assert.deepEqual(
    sortByLines(shuffled).map((c) => c.name),
    ['a1', 'a2', 'a3', 'b1', 'b2', 'b3'],
  );
  // PaddleOCR's order, by the top-left corner, interleaves the rows.
  assert.notDeepEqual(
    sortReadingOrder(shuffled).map((c) => c.name),
    ['a1', 'a2', 'a3', 'b1', 'b2', 'b3'],
  );
});

test('a box grows above and below into free space only, sharing a gap with its neighbour', () => {
  const [top, middle, alone] = growIntoFreeSpace(
    [box(0, 0, 200, 20), box(0, 24, 200, 20), box(400, 24, 100, 20)],
    0.5,
  );
  // 4 px between the first two: each takes 2; the third has no neighbour and takes 10.
  assert.deepEqual([top!.above, top!.below], [10, 2]);
  assert.deepEqual([middle!.above, middle!.below], [2, 10]);
  assert.deepEqual([alone!.above, alone!.below], [10, 10]);
  assert.deepEqual(middle!.box, box(0, 22, 200, 32));
  // A box higher than wide (vertical text) does not grow.
  assert.deepEqual(growIntoFreeSpace([box(0, 0, 20, 200)], 0.5)[0]!.box, box(0, 0, 20, 200));
});
