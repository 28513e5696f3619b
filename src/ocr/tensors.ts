import type { RgbImage } from './image.js';
import { resizeBicubic, resizeBilinear } from './pixels.js';
import type { Tensor } from './session.js';

// PaddleOCR feeds images as OpenCV reads them, BGR; the ImageNet mean/std are applied in that order.
const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];

/** NCHW float tensor of one image, channels B, G, R, normalised with ImageNet mean/std. */
export function detectionTensor(img: RgbImage): Tensor {
  const plane = img.width * img.height;
  const data = new Float32Array(3 * plane);
  const src = img.data;
  for (let c = 0; c < 3; c++) {
    const rgb = 2 - c;
    const scale = 1 / (255 * DET_STD[c]!);
    const shift = DET_MEAN[c]! / DET_STD[c]!;
    const base = c * plane;
    for (let p = 0; p < plane; p++) data[base + p] = src[p * 3 + rgb]! * scale - shift;
  }
  return { data, dims: [1, 3, img.height, img.width] };
}

/**
 * A batch for the recogniser or classifier, as PaddleOCR's resize_norm_img: each crop
 * resized to `height` keeping its aspect ratio (at most `width` wide), scaled to [-1, 1],
 * channels B, G, R, and right-padded with zeros to `width`. Crops are resized bilinearly, or
 * (`enlarge` `bicubic`) bicubically where they are enlarged.
 */
export function lineBatch(
  crops: readonly RgbImage[],
  height: number,
  width: number,
  enlarge: 'bilinear' | 'bicubic' = 'bilinear',
): Tensor {
  const plane = height * width;
  const data = new Float32Array(crops.length * 3 * plane);
  crops.forEach((crop, n) => {
    const ratio = crop.width / crop.height;
    const resizedW = Math.ceil(height * ratio) > width ? width : Math.max(1, Math.ceil(height * ratio));
    const img =
      enlarge === 'bicubic' && crop.height < height
        ? resizeBicubic(crop, resizedW, height)
        : resizeBilinear(crop, resizedW, height);
    const base = n * 3 * plane;
    for (let c = 0; c < 3; c++) {
      const rgb = 2 - c;
      const off = base + c * plane;
      for (let y = 0; y < height; y++) {
        const row = off + y * width;
        const srcRow = y * resizedW * 3;
        for (let x = 0; x < resizedW; x++) data[row + x] = img.data[srcRow + x * 3 + rgb]! / 127.5 - 1;
      }
    }
  });
  return { data, dims: [crops.length, 3, height, width] };
}

/** Pixels a crop holds beyond PaddleOCR's reference box: on the left and right, above, below. */
export interface Inset {
  readonly side: number;
  readonly top: number;
  readonly bottom: number;
}

/** `crop` without its `inset` (itself when that would leave too little). */
export function trim(crop: RgbImage, inset: Inset): RgbImage {
  const width = crop.width - 2 * inset.side;
  const height = crop.height - inset.top - inset.bottom;
  if ((inset.side <= 0 && inset.top <= 0 && inset.bottom <= 0) || width < 4 || height < 4) return crop;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((y + inset.top) * crop.width + inset.side) * 3;
    data.set(crop.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { data, width, height };
}
