import { InferenceError, messageOf, PackageRejectedError } from '../errors.js';
import { charset, ctcDecode } from './ctc.js';
import { boxesFromProbabilityMap } from './db-postprocess.js';
import { distance, type Quad, sortReadingOrder } from './geometry.js';
import type { RgbImage } from './image.js';
import type { OcrParams } from './params.js';
import { resizeBilinear, rotate90ccw, rotate180, warpQuad } from './pixels.js';
import type { GraphSession, Tensor } from './session.js';
import { detectionTensor, lineBatch } from './tensors.js';

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
    const { boxes, crops } = await this.locate(image, timings);
    const t = performance.now();
    const texts: RecognizedText[] = new Array(crops.length);
    for (const batch of planRecognition(crops, this.#params)) {
      const got = await this.recognizeBatch(
        batch.map((i) => crops[i]!),
        timings,
      );
      batch.forEach((i, k) => {
        texts[i] = got[k]!;
      });
    }
    timings.rec = performance.now() - t;
    const lines = this.assemble(boxes, texts);
    timings.total = performance.now() - start;
    return { lines, timings };
  }

  /**
   * Detection, crops and (when enabled) the direction classifier: the boxes in reading order
   * and an upright crop of each. A single-line recogniser's "box" is the whole image.
   */
  async locate(image: RgbImage, timings: OcrTimings): Promise<{ boxes: Quad[]; crops: RgbImage[] }> {
    const start = performance.now();
    let boxes: Quad[];
    let crops: RgbImage[];
    if (this.#graphs.det) {
      boxes = sortReadingOrder((await this.#detect(image, timings)).map((box) => ({ box }))).map(
        (b) => b.box,
      );
      crops = boxes.map((box) => cropLine(image, box));
    } else {
      const { width: w, height: h } = image;
      boxes = [
        [
          [0, 0],
          [w - 1, 0],
          [w - 1, h - 1],
          [0, h - 1],
        ],
      ];
      crops = [image];
    }
    timings.det += performance.now() - start;
    if (this.#graphs.cls && this.#params.cls.enabled && crops.length > 0) {
      const t = performance.now();
      crops = await this.#classify(crops, timings);
      timings.cls += performance.now() - t;
    }
    return { boxes, crops };
  }

  /** Recognises one batch of crops (as planned by {@link planRecognition}) in one run. */
  async recognizeBatch(crops: readonly RgbImage[], timings: OcrTimings): Promise<RecognizedText[]> {
    const p = this.#params.rec;
    let maxRatio = p.imageWidth / p.imageHeight;
    for (const c of crops) maxRatio = Math.max(maxRatio, c.width / c.height);
    const width = Math.min(Math.trunc(p.imageHeight * maxRatio), p.maxImageWidth);
    const out = await this.#run('rec', this.#graphs.rec, lineBatch(crops, p.imageHeight, width), timings);
    const [, steps, classes] = out.dims as [number, number, number];
    return crops.map((_, k) => ctcDecode(out.data, k * steps * classes, steps, classes, this.#chars));
  }

  /** Lines from boxes and their texts: empty ones and those under the drop score are left out. */
  assemble(boxes: readonly Quad[], texts: readonly RecognizedText[]): OcrLine[] {
    return assembleLines(boxes, texts, this.#params.rec.dropScore);
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

  async #detect(image: RgbImage, timings: OcrTimings): Promise<Quad[]> {
    const p = this.#params.det;
    const { width: w, height: h } = image;
    const side = p.limitType === 'max' ? Math.max(w, h) : Math.min(w, h);
    const ratio =
      p.limitType === 'max'
        ? side > p.limitSideLen
          ? p.limitSideLen / side
          : 1
        : side < p.limitSideLen
          ? p.limitSideLen / side
          : 1;
    const rh = Math.max(Math.round((h * ratio) / 32) * 32, 32);
    const rw = Math.max(Math.round((w * ratio) / 32) * 32, 32);
    const resized = rw === w && rh === h ? image : resizeBilinear(image, rw, rh);
    const out = await this.#run('det', this.#graphs.det!, detectionTensor(resized), timings);
    const [, , mh, mw] = out.dims as [number, number, number, number];
    return boxesFromProbabilityMap(out.data, mw, mh, w, h, p);
  }

  async #classify(crops: RgbImage[], timings: OcrTimings): Promise<RgbImage[]> {
    const p = this.#params.cls;
    const result = crops.slice();
    const order = byAspect(crops);
    for (let b = 0; b < order.length; b += p.batchSize) {
      const idx = order.slice(b, b + p.batchSize);
      const out = await this.#run(
        'cls',
        this.#graphs.cls!,
        lineBatch(
          idx.map((i) => crops[i]!),
          p.imageHeight,
          p.imageWidth,
        ),
        timings,
      );
      idx.forEach((i, k) => {
        const p0 = out.data[k * 2]!;
        const p180 = out.data[k * 2 + 1]!;
        if (p180 > p0 && p180 > p.threshold) result[i] = rotate180(crops[i]!);
      });
    }
    return result;
  }
}

/** A recognised crop: text and the mean probability of its kept CTC steps. */
export interface RecognizedText {
  readonly text: string;
  readonly score: number;
}

/**
 * How to batch crops for recognition: sorted by aspect ratio, at most `batchSize` a batch, a
 * new batch whenever a crop would be padded past 1.5x its own width. Batches are independent,
 * so they can run on different threads.
 */
export function planRecognition(
  crops: readonly { width: number; height: number }[],
  params: OcrParams,
): number[][] {
  const p = params.rec;
  return batchesOfSimilarWidth(crops, byAspect(crops), p.batchSize, p.imageWidth / p.imageHeight);
}

/** Lines from boxes and their texts: empty ones and those under `dropScore` are left out. */
export function assembleLines(
  boxes: readonly Quad[],
  texts: readonly RecognizedText[],
  dropScore: number,
): OcrLine[] {
  const lines: OcrLine[] = [];
  texts.forEach((r, i) => {
    if (r.score >= dropScore && r.text.length > 0)
      lines.push({ text: r.text, score: r.score, box: boxes[i]! });
  });
  return lines;
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
