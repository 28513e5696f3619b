export { charset, ctcDecode } from './ctc.js';
export {
  assembleLines,
  cropLine,
  type Located,
  OcrEngine,
  type OcrGraphs,
  type OcrLine,
  type OcrResult,
  type OcrTimings,
  planRecognition,
  type RecognizedText,
  readingOrder,
} from './engine.js';
export type { Point, Quad } from './geometry.js';
export { DEFAULT_MAX_PIXELS, type DecodeLimits, decodeImage, type RgbImage } from './image.js';
export { DEFAULT_PARAMS, type OcrParams, paramsFromManifest } from './params.js';
export type { GraphSession, Tensor } from './session.js';
