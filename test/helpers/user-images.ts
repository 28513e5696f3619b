import sharp from 'sharp';
import { renderText } from './images.js';

/**
 * Images as users send them, each with the text it holds and where: the kinds of image that
 * PP-OCRv4 reads in other pipelines and that a pipeline tuned on clean pages gets wrong.
 * Generated, so every run sees the same pixels; used by the tests and by bench/ocr-accuracy.
 */
export interface UserImage {
  /** What the case is about, as the tests and the benchmark name it. */
  readonly name: string;
  readonly bytes: Buffer;
  /** The lines, in reading order. */
  readonly lines: readonly string[];
  /** Each line's extent in the image as sent: [left, top, right, bottom]. */
  readonly extents: readonly (readonly [number, number, number, number])[];
}

const CJK_FONT = 'WenQuanYi Micro Hei';

/** Text on a transparent background (Pango's own rendering, trimmed to the ink), and its size. */
async function inkOnly(
  text: string,
  font: string,
  px: number,
  color: string,
): Promise<{ png: Buffer; width: number; height: number }> {
  const png = await sharp({
    text: {
      text: `<span foreground="${color}" size="${Math.round(px * 1024 * 0.75)}">${text}</span>`,
      font,
      dpi: 72,
      rgba: true,
    },
  })
    .png()
    .toBuffer();
  const trimmed = await sharp(png).trim({ threshold: 1 }).png().toBuffer({ resolveWithObject: true });
  return { png: trimmed.data, width: trimmed.info.width, height: trimmed.info.height };
}

/** White text on a fully transparent background (whose hidden colour is also white). */
export async function whiteTextOnTransparency(): Promise<UserImage> {
  const text = '我是中国人';
  const ink = await inkOnly(text, CJK_FONT, 40, '#ffffff');
  const m = 24;
  const bytes = await sharp(ink.png)
    .extend({ top: m, bottom: m, left: m, right: m, background: { r: 255, g: 255, b: 255, alpha: 0 } })
    .png()
    .toBuffer();
  return {
    name: 'white text on a transparent PNG',
    bytes,
    lines: [text],
    extents: [[m, m, m + ink.width, m + ink.height]],
  };
}

/** Black text on transparency: what already read well, kept as it is. */
export async function blackTextOnTransparency(): Promise<UserImage> {
  const text = '我是中国人';
  const ink = await inkOnly(text, CJK_FONT, 40, '#000000');
  const m = 24;
  const bytes = await sharp(ink.png)
    .extend({ top: m, bottom: m, left: m, right: m, background: { r: 0, g: 0, b: 0, alpha: 0 } })
    .png()
    .toBuffer();
  return {
    name: 'black text on a transparent PNG',
    bytes,
    lines: [text],
    extents: [[m, m, m + ink.width, m + ink.height]],
  };
}

/** A two-channel PNG (grey and alpha), the text close to its edges. */
export async function greyAlphaLine(): Promise<UserImage> {
  const text = 'TREND PLOT REPORT';
  const ink = await inkOnly(text, 'DejaVu Sans', 22, '#000000');
  const m = 4;
  const { data, info } = await sharp(ink.png)
    .extend({ top: m, bottom: m, left: m, right: m, background: { r: 0, g: 0, b: 0, alpha: 0 } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = info.width * info.height;
  const greyAlpha = Buffer.alloc(pixels * 2);
  for (let i = 0; i < pixels; i++) {
    greyAlpha[i * 2] = data[i * 4]!;
    greyAlpha[i * 2 + 1] = data[i * 4 + 3]!;
  }
  const bytes = await sharp(greyAlpha, { raw: { width: info.width, height: info.height, channels: 2 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  return {
    name: 'a grey and alpha PNG (two channels)',
    bytes,
    lines: [text],
    extents: [[m, m, m + ink.width, m + ink.height]],
  };
}

/** White text on transparency stored with 16 bits a channel. */
export async function sixteenBitTransparent(): Promise<UserImage> {
  const text = 'Sixteen bits 16位';
  const ink = await inkOnly(text, CJK_FONT, 34, '#f0f0f0');
  const m = 20;
  const bytes = await sharp(ink.png)
    .extend({ top: m, bottom: m, left: m, right: m, background: { r: 0, g: 0, b: 0, alpha: 0 } })
    .toColourspace('rgb16')
    .png()
    .toBuffer();
  return {
    name: 'light text on transparency, 16 bits a channel',
    bytes,
    lines: [text],
    extents: [[m, m, m + ink.width, m + ink.height]],
  };
}

/**
 * A small photo-like label, 320 x 430: 18 pieces of small mixed Chinese, Latin and digits,
 * some whole phrases, many a word, a price or one character set apart, on a tinted card,
 * slightly blurred and JPEG-compressed. `grey` stores it with one channel.
 */
export async function smallLabel(grey = false): Promise<UserImage> {
  const PX = 13;
  const items: [string, number, number, number][] = [
    // text, px, left, top
    ['正品促销', 22, 100, 14],
    ['大桶装', 14, 16, 58],
    ['更划算', 14, 226, 58],
    ['K', PX, 24, 100],
    ['巨', PX, 150, 100],
    ['A', PX, 270, 100],
    ['7.9', PX, 24, 146],
    ['元', PX, 150, 146],
    ['2L', PX, 270, 146],
    ['优', PX, 24, 192],
    ['9折', PX, 150, 192],
    ['新', PX, 270, 192],
    ['38', PX, 24, 238],
    ['热', PX, 150, 238],
    ['G', PX, 270, 238],
    ['强力去污 符合国标', 13, 24, 290],
    ['40°C深度防冻 不结冰', 13, 24, 336],
    ['客服 400-800-1234', 13, 24, 382],
  ];
  const composites: { input: Buffer; left: number; top: number }[] = [];
  const extents: [number, number, number, number][] = [];
  for (const [text, px, left, top] of items) {
    const ink = await inkOnly(text, CJK_FONT, px, '#202020');
    composites.push({ input: ink.png, left, top });
    extents.push([left, top, left + ink.width, top + ink.height]);
  }
  let image = sharp({ create: { width: 320, height: 430, channels: 3, background: '#f4f0e6' } }).composite(
    composites,
  );
  image = sharp(await image.png().toBuffer()).blur(0.5);
  if (grey) image = image.toColourspace('b-w');
  const bytes = await image.jpeg({ quality: 85 }).toBuffer();
  return {
    name: grey ? 'a small label, one channel' : 'a small label photo (320 x 430)',
    bytes,
    lines: items.map(([text]) => text),
    extents,
  };
}

/** One long line that fills a wide image from edge to edge. */
export async function longLine(): Promise<UserImage> {
  const text =
    '取决于所使用的执行提供者，它可能没有完全支持模型中的所有操作，回落到CPU操作可能会导致性能下降';
  const ink = await inkOnly(text, CJK_FONT, 30, '#000000');
  const m = 3;
  const bytes = await sharp(ink.png)
    .flatten({ background: '#ffffff' })
    .extend({ top: m, bottom: m, left: m, right: m, background: '#ffffff' })
    .png()
    .toBuffer();
  return {
    name: 'one long line filling a wide image',
    bytes,
    lines: [text],
    extents: [[m, m, m + ink.width, m + ink.height]],
  };
}

/** A crop cut to the ink: the text touches every border. */
export async function tightCrop(): Promise<UserImage> {
  const text = '在中国作家协会第三届儿童文学';
  const ink = await inkOnly(text, CJK_FONT, 30, '#000000');
  const bytes = await sharp(ink.png).flatten({ background: '#ffffff' }).png().toBuffer();
  return {
    name: 'a tight crop, the text touching the border',
    bytes,
    lines: [text],
    extents: [[0, 0, ink.width, ink.height]],
  };
}

/** A line turned upside down (the image rotated by 180 degrees). */
export async function upsideDownLine(): Promise<UserImage> {
  const text = '倒置的文字 Upside down 2026';
  const ink = await inkOnly(text, CJK_FONT, 32, '#000000');
  const m = 30;
  const bytes = await sharp(ink.png)
    .flatten({ background: '#ffffff' })
    .extend({ top: m, bottom: m, left: m, right: m, background: '#ffffff' })
    .rotate(180)
    .png()
    .toBuffer();
  return {
    name: 'an upside-down line',
    bytes,
    lines: [text],
    extents: [[m, m, m + ink.width, m + ink.height]],
  };
}

/**
 * Long Latin lines, upright, in a size and style that the direction classifier, squeezing a
 * line to 192 x 48, takes for upside down.
 */
export async function longLatinLines(): Promise<UserImage> {
  const lines = ['Shipping Payment Method Reference Number'];
  const bytes = await renderText(lines, { font: 'DejaVu Serif', px: 56 });
  return { name: 'long Latin lines, upright', bytes, lines, extents: [] };
}

/** Every case above, in the order the issue lists them, then those that already read well. */
export async function userImages(): Promise<UserImage[]> {
  return [
    await whiteTextOnTransparency(),
    await greyAlphaLine(),
    await smallLabel(),
    await smallLabel(true),
    await longLine(),
    await tightCrop(),
    await upsideDownLine(),
    await sixteenBitTransparent(),
    await blackTextOnTransparency(),
    await longLatinLines(),
  ];
}
