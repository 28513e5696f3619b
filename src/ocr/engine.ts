import { InferenceError, messageOf, PackageRejectedError } from '../errors.js';
import { charset, ctcDecode } from './ctc.js';
import { boxesFromProbabilityMap, type DbResult } from './db-postprocess.js';
import { firstRatio, inputSize, secondRatio } from './detection.js';
import {
  distance,
  growIntoFreeSpace,
  type Point,
  type Quad,
  sortByLines,
  sortReadingOrder,
  turned,
} from './geometry.js';
import type { RgbImage } from './image.js';
import { tightenToInk } from './ink.js';
import { padForDetection } from './margins.js';
import type { OcrParams } from './params.js';
import { resizeBilinear, rotate90ccw, rotate180, warpQuad } from './pixels.js';
import type { GraphSession, Tensor } from './session.js';
import { detectionTensor, type Inset, lineBatch, trim } from './tensors.js';

/** One line of text found in an image. */
export interface OcrLine {
  readonly text: string;
  /** Mean probability of the kept CTC steps, 0..1. */
  readonly score: number;
  /** Corners in source-image pixels: top-left, top-right, bottom-right, bottom-left. */
  readonly box: Quad;
}

/** Milliseconds spent in each stage; `inference` is the part inside the runtime's run(). */
export interface OcrTimings {
  det: number;
  cls: number;
  rec: number;
  inference: number;
  total: number;
}

export interface OcrResult {
  readonly lines: OcrLine[];
  readonly timings: OcrTimings;
}

export interface OcrGraphs {
  /** Detection; absent for a single-line recogniser (task `rec`). */
  readonly det?: GraphSession;
  readonly rec: GraphSession;
  readonly cls?: GraphSession;
}

/**
 * What detection (and, when it runs before recognition, the direction classifier) hands to
 * recognition: the boxes in reading order, in the pixels of the image as sent, and a crop of
 * each, upright as far as the classifier could tell.
 */
export interface Located {
  readonly boxes: Quad[];
  readonly crops: RgbImage[];
  /** Whether the classifier turned each crop. */
  readonly turned: boolean[];
  /**
   * For each crop, how many pixels on every side are margin beyond PaddleOCR's reference
   * box: a second reading with `rec.retryBelow` can leave them out.
   */
  readonly insets: Inset[];
}

function incompatible(message: string): never {
  throw new PackageRejectedError('GRAPH_INCOMPATIBLE', message);
}

/**
 * The output shape each session gave for a blank input of each shape. A session does not
 * change once open, so one shared by several versions (the same graph) is run once per
 * input shape; each version still checks that shape against its own dictionary and parameters.
 */
const probed = new WeakMap<GraphSession, Map<string, readonly number[]>>();

/**
 * The PP-OCR pipeline over already-created graph sessions (their owner releases them).
 * Stateless between calls: safe to call concurrently.
 */
export class OcrEngine {
  readonly #graphs: OcrGraphs;
  readonly #chars: readonly string[];
  readonly #params: OcrParams;

  private constructor(graphs: OcrGraphs, chars: readonly string[], params: OcrParams) {
    this.#graphs = graphs;
    this.#chars = chars;
    this.#params = params;
  }

  /**
   * Checks that each graph fits its role by running it once on a blank input (detection
   * gives a one-channel map of the input's size, the classifier two classes, the
   * recogniser one class per dictionary entry plus blank and space), then returns the engine.
   * Throws GRAPH_INCOMPATIBLE otherwise.
   */
  static async create(graphs: OcrGraphs, dictionary: string, params: OcrParams): Promise<OcrEngine> {
    const chars = charset(dictionary, params.rec.useSpaceChar);
    for (const [role, g] of Object.entries(graphs) as [string, GraphSession | undefined][]) {
      if (g && (g.inputNames.length !== 1 || g.outputNames.length !== 1)) {
        incompatible(
          `The ${role} graph has ${g.inputNames.length} inputs and ${g.outputNames.length} outputs; a PP-OCR ${role} graph has one of each.`,
        );
      }
    }
    const probe = async (
      role: string,
      g: GraphSession,
      dims: number[],
    ): Promise<{ dims: readonly number[] }> => {
      const shapes = probed.get(g) ?? new Map<string, readonly number[]>();
      probed.set(g, shapes);
      const known = shapes.get(dims.join('x'));
      if (known) return { dims: known };
      try {
        const out = await g.run({ data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims });
        shapes.set(dims.join('x'), out.dims);
        return out;
      } catch (cause) {
        throw new PackageRejectedError(
          'GRAPH_INCOMPATIBLE',
          `The ${role} graph cannot run on a ${dims.join('x')} image batch: ${messageOf(cause)}`,
          { cause },
        );
      }
    };
    if (graphs.det) {
      const out = await probe('det', graphs.det, [1, 3, 64, 64]);
      if (out.dims.length !== 4 || out.dims[1] !== 1 || out.dims[2] !== 64 || out.dims[3] !== 64) {
        incompatible(
          `The det graph returned ${out.dims.join('x')} for a 64x64 image; a DB detector returns 1x1x64x64.`,
        );
      }
    }
    if (graphs.cls) {
      const out = await probe('cls', graphs.cls, [1, 3, params.cls.imageHeight, params.cls.imageWidth]);
      if (out.dims.length !== 2 || out.dims[1] !== 2) {
        incompatible(
          `The cls graph returned ${out.dims.join('x')}; a direction classifier returns Nx2 (0° and 180°).`,
        );
      }
    }
    const out = await probe('rec', graphs.rec, [1, 3, params.rec.imageHeight, params.rec.imageWidth]);
    if (out.dims.length !== 3)
      incompatible(
        `The rec graph returned ${out.dims.join('x')}; a CTC recogniser returns N x steps x classes.`,
      );
    if (out.dims[2] !== chars.length) {
      incompatible(
        `The rec graph has ${out.dims[2]} classes but the dictionary gives ${chars.length} (${chars.length - 1 - (params.rec.useSpaceChar ? 1 : 0)} characters + blank${params.rec.useSpaceChar ? ' + space' : ''}): the graph and dictionary do not belong together.`,
      );
    }
    return new OcrEngine(graphs, chars, params);
  }

  /** Reads every line of text in the image, in reading order. */
  async read(image: RgbImage): Promise<OcrResult> {
    const timings: OcrTimings = { det: 0, cls: 0, rec: 0, inference: 0, total: 0 };
    const start = performance.now();
    const located = await this.locate(image, timings);
    const { crops } = located;
    const t = performance.now();
    const texts: RecognizedText[] = new Array(crops.length);
    for (const batch of planRecognition(crops, this.#params)) {
      const got = await this.recognizeBatch(
        batch.map((i) => crops[i]!),
        timings,
        batch.map((i) => located.insets[i]!),
      );
      batch.forEach((i, k) => {
        texts[i] = got[k]!;
      });
    }
    timings.rec = performance.now() - t;
    const lines = assembleLines(located, texts, this.#params);
    timings.total = performance.now() - start;
    return { lines, timings };
  }

  /**
   * Detection, crops and (when enabled) the direction classifier: the boxes in reading order
   * and an upright crop of each (see {@link Located}). A single-line recogniser's "box" is
   * the whole image.
   */
  async locate(image: RgbImage, timings: OcrTimings): Promise<Located> {
    const start = performance.now();
    const { width: w, height: h } = image;
    let boxes: Quad[];
    let crops: RgbImage[];
    let insets: Inset[];
    if (this.#graphs.det) {
      // Crops come from the padded image, so a line cut close to the border keeps a margin.
      const work = this.#params.det.pad ? padForDetection(image) : { image, left: 0, top: 0 };
      const detected = await this.#detect(work.image, timings);
      const order = readingOrder(detected.boxes, this.#params.det.order);
      const found = order.map((i) => detected.boxes[i]!);
      // Room only in an image taken for one line: on a page the lines above and below are
      // close, and crops without room measured better there (docs/OCR.md).
      const padded = work.left > 0 || work.top > 0;
      const grown = growIntoFreeSpace(found, padded ? this.#params.rec.room : 0);
      insets = order.map((i, k) => {
        const inset = detected.insets[i]!;
        return { side: inset, top: inset + grown[k]!.above, bottom: inset + grown[k]!.below };
      });
      crops = grown.map(({ box }) => cropLine(work.image, box));
      boxes = found.map((box) => toSource(box, work.left, work.top, w, h));
    } else {
      boxes = [
        [
          [0, 0],
          [w - 1, 0],
          [w - 1, h - 1],
          [0, h - 1],
        ],
      ];
      crops = [image];
      insets = [{ side: 0, top: 0, bottom: 0 }];
    }
    timings.det += performance.now() - start;
    let upsideDown = crops.map(() => false);
    const p = this.#params.cls;
    // PaddleOCR's way: every line classified before it is read (with `confirmBelow`, recognition asks).
    if (this.#graphs.cls && p.enabled && p.confirmBelow === 0 && crops.length > 0) {
      const t = performance.now();
      upsideDown = await this.#classify(crops, timings);
      crops = crops.map((c, i) => (upsideDown[i] ? rotate180(c) : c));
      timings.cls += performance.now() - t;
    }
    return { boxes, crops, turned: upsideDown, insets };
  }

  /**
   * Recognises one batch of crops (as planned by {@link planRecognition}) in one run, then
   * takes a second look at the lines read with a low score. With `cls.confirmBelow`, the
   * direction classifier is asked about each line read with a lower score; one it takes for
   * upside down is read turned, and kept turned if that reads with the higher score. With
   * `rec.retryBelow`, a line still read with a lower score is read again, each way alone:
   * enlarged bilinearly (when `rec.enlarge` is not), and cut to its text's rows or to
   * PaddleOCR's reference box ({@link retryCrops}); the reading with the highest score is kept.
   */
  async recognizeBatch(
    crops: readonly RgbImage[],
    timings: OcrTimings,
    insets: readonly Inset[] = [],
  ): Promise<RecognizedText[]> {
    const { rec, cls } = this.#params;
    const texts = await this.#recognize(crops, rec.enlarge, timings);
    const ask = this.#graphs.cls !== undefined && cls.enabled && cls.confirmBelow > 0;
    for (let k = 0; k < crops.length; k++) {
      let crop = crops[k]!;
      if (ask && texts[k]!.score < cls.confirmBelow) {
        const t = performance.now();
        const [upsideDown] = await this.#classify([crop], timings);
        timings.cls += performance.now() - t;
        if (upsideDown) {
          const turned = rotate180(crop);
          const [read] = await this.#recognize([turned], rec.enlarge, timings);
          if (read!.score > texts[k]!.score) {
            texts[k] = { ...read!, turned: true };
            crop = turned;
          }
        }
      }
      if (texts[k]!.score >= rec.retryBelow) continue;
      const turnedRead = texts[k]!.turned === true;
      for (const other of retryCrops(crop, insets[k] ?? NO_INSET, turnedRead, rec)) {
        const [again] = await this.#recognize([other], 'bilinear', timings);
        if (again!.score > texts[k]!.score) texts[k] = { ...again!, turned: turnedRead };
      }
    }
    return texts;
  }

  async #recognize(
    crops: readonly RgbImage[],
    enlarge: OcrParams['rec']['enlarge'],
    timings: OcrTimings,
  ): Promise<RecognizedText[]> {
    const p = this.#params.rec;
    const out = await this.#run(
      'rec',
      this.#graphs.rec,
      lineBatch(crops, p.imageHeight, batchWidth(crops, p), enlarge),
      timings,
    );
    const [, steps, classes] = out.dims as [number, number, number];
    return crops.map((_, k) => ctcDecode(out.data, k * steps * classes, steps, classes, this.#chars));
  }

  async #run(role: string, g: GraphSession, input: Tensor, timings: OcrTimings): Promise<Tensor> {
    const t = performance.now();
    try {
      return await g.run(input);
    } catch (cause) {
      throw new InferenceError(`The ${role} graph failed: ${messageOf(cause)}`, { cause });
    } finally {
      timings.inference += performance.now() - t;
    }
  }

  /** DB detection, again at a larger scale when the first pass shows text too small for its own (`det.rescale`). */
  async #detect(image: RgbImage, timings: OcrTimings): Promise<DbResult> {
    const p = this.#params.det;
    const { width: w, height: h } = image;
    const ratio = firstRatio(w, h, p);
    const first = await this.#detectAt(image, ratio, timings);
    const again = secondRatio(w, h, ratio, first, p);
    return again === undefined ? first : this.#detectAt(image, again, timings);
  }

  async #detectAt(image: RgbImage, ratio: number, timings: OcrTimings) {
    const p = this.#params.det;
    const { width: w, height: h } = image;
    const [rw, rh] = inputSize(w, h, ratio);
    const resized = rw === w && rh === h ? image : resizeBilinear(image, rw, rh);
    const out = await this.#run('det', this.#graphs.det!, detectionTensor(resized), timings);
    const [, , mh, mw] = out.dims as [number, number, number, number];
    return boxesFromProbabilityMap(out.data, mw, mh, w, h, p);
  }

  /**
   * Which crops the direction classifier takes for upside down: 180 degrees more likely than
   * 0 and above `threshold`. With `cls.windows`, a line longer than the classifier's input is
   * classified in windows of that width (at its height), and their log-odds averaged: squeezed
   * into one input, a long Latin line is often taken for upside down.
   */
  async #classify(crops: readonly RgbImage[], timings: OcrTimings): Promise<boolean[]> {
    const p = this.#params.cls;
    const pieces: { crop: number; image: RgbImage }[] = [];
    for (const i of byAspect(crops)) {
      const parts = p.windows ? classifierWindows(crops[i]!, p.imageHeight, p.imageWidth) : [crops[i]!];
      for (const image of parts) pieces.push({ crop: i, image });
    }
    const logOdds = new Float64Array(crops.length);
    const count = new Uint32Array(crops.length);
    for (let b = 0; b < pieces.length; b += p.batchSize) {
      const batch = pieces.slice(b, b + p.batchSize);
      const out = await this.#run(
        'cls',
        this.#graphs.cls!,
        lineBatch(
          batch.map((x) => x.image),
          p.imageHeight,
          p.imageWidth,
        ),
        timings,
      );
      batch.forEach(({ crop }, k) => {
        const p0 = Math.max(out.data[k * 2]!, 1e-7);
        const p180 = Math.max(out.data[k * 2 + 1]!, 1e-7);
        logOdds[crop]! += Math.log(p180 / p0);
        count[crop]!++;
      });
    }
    return crops.map((_, i) => {
      const odds = logOdds[i]! / Math.max(1, count[i]!);
      const p180 = 1 / (1 + Math.exp(-odds));
      return odds > 0 && p180 > p.threshold;
    });
  }
}

/** A recognised crop: text and the mean probability of its kept CTC steps. */
export interface RecognizedText {
  readonly text: string;
  readonly score: number;
  /** Read from the crop turned by 180 degrees (`cls.confirmBelow`). */
  readonly turned?: boolean;
}

/**
 * How to batch crops for recognition. `rec.width` `padded`: sorted by aspect ratio, at most
 * `batchSize` a batch, a new batch whenever a crop would be padded past 1.5x its own width.
 * `own`: one crop a batch, widest first (a line's cost grows with its width, and batches
 * of one cost no more per line than larger ones on a CPU: bench/ocr-speed). Batches are
 * independent, so they can run on different threads.
 */
export function planRecognition(
  crops: readonly { width: number; height: number }[],
  params: OcrParams,
): number[][] {
  const p = params.rec;
  if (p.width === 'own')
    return byAspect(crops)
      .reverse()
      .map((i) => [i]);
  return batchesOfSimilarWidth(crops, byAspect(crops), p.batchSize, p.imageWidth / p.imageHeight);
}

/** The width a batch of crops is run at: the widest crop's at `imageHeight`, within the bounds of `rec`. */
function batchWidth(crops: readonly RgbImage[], p: OcrParams['rec']): number {
  let maxRatio = p.imageWidth / p.imageHeight;
  for (const c of crops) maxRatio = Math.max(maxRatio, c.width / c.height);
  // lineBatch resizes a crop to ceil(height x ratio): a batch of one is run at exactly that.
  const width =
    p.width === 'own' ? Math.ceil(p.imageHeight * maxRatio) : Math.trunc(p.imageHeight * maxRatio);
  return Math.min(width, p.maxImageWidth);
}

/**
 * Lines from boxes and their texts: empty ones and those under `rec.dropScore` are left out
 * (with `rec.trim`, spaces at either end of a text are left out first). With `det.order` `lines`, when lines read turned (by the classifier before recognition, or
 * after it) make up most of the page (by width), the page is upside down: its lines are given
 * in the order they have with the page turned by 180 degrees.
 */
export function assembleLines(
  located: Pick<Located, 'boxes' | 'turned'>,
  texts: readonly RecognizedText[],
  params: OcrParams,
): OcrLine[] {
  const { boxes } = located;
  const width = (i: number) => distance(boxes[i]![0], boxes[i]![1]);
  let turnedWidth = 0;
  let allWidth = 0;
  boxes.forEach((_, i) => {
    allWidth += width(i);
    if (located.turned[i] || texts[i]!.turned) turnedWidth += width(i);
  });
  const order =
    params.det.order === 'lines' && turnedWidth * 2 > allWidth
      ? readingOrder(
          boxes.map((b) => turned(b)),
          params.det.order,
        )
      : boxes.map((_, i) => i);
  const lines: OcrLine[] = [];
  for (const i of order) {
    const r = texts[i]!;
    const text = params.rec.trim ? r.text.trim() : r.text;
    if (r.score >= params.rec.dropScore && text.length > 0)
      lines.push({ text, score: r.score, box: boxes[i]! });
  }
  return lines;
}

/** The indices of `boxes` in reading order (`det.order`). */
export function readingOrder(boxes: readonly Quad[], order: OcrParams['det']['order']): number[] {
  const items = boxes.map((box, i) => ({ box, i }));
  return (order === 'lines' ? sortByLines(items) : sortReadingOrder(items)).map((x) => x.i);
}

/** A box found in the padded image, in the pixels of the image as sent (clipped to it). */
function toSource(box: Quad, left: number, top: number, width: number, height: number): Quad {
  if (left === 0 && top === 0) return box;
  return box.map(
    ([x, y]) =>
      [Math.min(Math.max(x - left, 0), width - 1), Math.min(Math.max(y - top, 0), height - 1)] as Point,
  ) as Quad;
}

/** Indices sorted by width/height, so each batch pads little. */
function byAspect(crops: readonly { width: number; height: number }[]): number[] {
  return crops
    .map((_, i) => i)
    .sort((a, b) => crops[a]!.width / crops[a]!.height - crops[b]!.width / crops[b]!.height);
}

/**
 * Splits ratio-sorted crops into batches of at most `size`, starting a new batch when a crop
 * would have to be padded to more than 1.5x its own width: every line is padded to the
 * widest of its batch, and the recogniser's cost grows with width.
 */
function batchesOfSimilarWidth(
  crops: readonly { width: number; height: number }[],
  order: readonly number[],
  size: number,
  minRatio: number,
): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let first = 0;
  for (const i of order) {
    const ratio = Math.max(minRatio, crops[i]!.width / crops[i]!.height);
    if (current.length > 0 && (current.length >= size || ratio > first * 1.5)) {
      batches.push(current);
      current = [];
    }
    if (current.length === 0) first = ratio;
    current.push(i);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** PaddleOCR's get_rotate_crop_image: an upright crop of the box; tall crops are turned to lie flat. */
export function cropLine(image: RgbImage, box: Quad): RgbImage {
  const width = Math.max(1, Math.trunc(Math.max(distance(box[0], box[1]), distance(box[2], box[3]))));
  const height = Math.max(1, Math.trunc(Math.max(distance(box[0], box[3]), distance(box[1], box[2]))));
  const crop = warpQuad(image, box, width, height);
  return height / width >= 1.5 ? rotate90ccw(crop) : crop;
}

/**
 * A crop cut into windows for the direction classifier: resized to `height` keeping its
 * aspect ratio and, when then wider than `width`, split into equal windows no wider than
 * that, of which the first, the middle and the last are kept (more add nothing measurable:
 * docs/OCR.md). A crop that fits is returned as it is (the classifier's batch resizes it).
 */
export function classifierWindows(crop: RgbImage, height: number, width: number): RgbImage[] {
  const scaled = Math.max(1, Math.round((height * crop.width) / crop.height));
  if (scaled <= width) return [crop];
  const line = resizeBilinear(crop, scaled, height);
  const n = Math.ceil(scaled / width);
  const kept = n <= 3 ? [...Array(n).keys()] : [0, n >> 1, n - 1];
  return kept.map((k) => {
    const x0 = Math.round((k * scaled) / n);
    const x1 = Math.round(((k + 1) * scaled) / n);
    const w = x1 - x0;
    const data = new Uint8Array(w * height * 3);
    for (let y = 0; y < height; y++) {
      data.set(line.data.subarray((y * scaled + x0) * 3, (y * scaled + x1) * 3), y * w * 3);
    }
    return { data, width: w, height };
  });
}

const NO_INSET: Inset = { side: 0, top: 0, bottom: 0 };

/**
 * The inputs of a second reading, each enlarged bilinearly: the crop cut to PaddleOCR's
 * reference box (`inset`, whose top and bottom swap for a crop read turned); the crop cut to
 * its text's rows, when they fill little of it (a small, blurred line is found with a fat
 * box); and the crop itself when `rec.enlarge` enlarged it otherwise.
 */
function retryCrops(crop: RgbImage, inset: Inset, turned: boolean, rec: OcrParams['rec']): RgbImage[] {
  const others = new Set<RgbImage>([
    trim(crop, turned ? { side: inset.side, top: inset.bottom, bottom: inset.top } : inset),
    tightenToInk(crop),
  ]);
  if (rec.enlarge === 'bilinear' || crop.height >= rec.imageHeight) others.delete(crop);
  else others.add(crop);
  return [...others];
}
