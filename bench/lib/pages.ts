import sharp from 'sharp';
import { renderText } from '../../test/helpers/images.js';

/** A deterministic pseudo-random source (mulberry32), so every run renders the same pages. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHINESE = [
  '今天天气很好我们去公园散步',
  '请在三个工作日内完成付款',
  '北京市海淀区中关村大街二十七号',
  '会议将于下午三点在二楼举行',
  '本产品适用于家庭和办公室',
  '欢迎光临请出示您的会员卡',
  '上海到杭州的高铁每天都有',
  '学习中文需要耐心和坚持',
  '价格已包含增值税和运费',
  '退货请保留原始包装和发票',
  '图书馆周末开放时间有调整',
  '这家餐厅的招牌菜是红烧肉',
];
const ENGLISH = [
  'The quick brown fox jumps over the lazy dog',
  'Invoice number 2026-0042 is due on Friday',
  'Please keep this receipt for your records',
  'Total amount: 1,249.99 USD',
  'Meeting moved to Room 301 at 3 PM',
  'Serial No. A7X-99812-B',
  'Tel: +86 10 6253 1234',
  'Order shipped on 25 November 2026',
];
const MIXED = ['订单号 A20261125 已发货', '总金额 1280 元', '版本 v2.1.0 已上线', 'iPhone 手机壳 两件 59 元'];

export interface Page {
  readonly id: string;
  readonly kind: 'clean' | 'hard';
  readonly lines: string[];
  readonly png: Buffer;
}

/** Renders one line in its font and size onto its own strip. */
async function strip(
  text: string,
  px: number,
  cjk: boolean,
  random: () => number,
  color: string,
  background: string,
): Promise<Buffer> {
  const font = cjk ? 'WenQuanYi Micro Hei' : random() < 0.5 ? 'DejaVu Sans' : 'DejaVu Serif';
  return renderText([text], { font, px, margin: Math.round(px * 0.6), color, background });
}

async function addNoise(png: Buffer, amount: number, random: () => number): Promise<Buffer> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  for (let i = 0; i < data.length; i++) {
    // Sum of uniforms: roughly Gaussian.
    const n = (random() + random() + random() - 1.5) * amount;
    data[i] = Math.max(0, Math.min(255, data[i]! + n));
  }
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .png()
    .toBuffer();
}

/**
 * Evaluation pages with known text: 3 to 5 lines of common Chinese, English, digits and
 * mixed text, 14-48 px, in Debian's fonts. Hard pages add blur, rotation up to 3 degrees,
 * JPEG compression, noise and tinted backgrounds.
 */
export async function makePages(count: number, seed = 20261125): Promise<Page[]> {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const pages: Page[] = [];
  for (let p = 0; p < count; p++) {
    const kind = p % 2 === 0 ? 'clean' : 'hard';
    const n = 3 + Math.floor(random() * 3);
    const lines: string[] = [];
    const strips: Buffer[] = [];
    const tinted = kind === 'hard' && random() < 0.6;
    const background = tinted ? pick(['#f3e6b4', '#dfeef7', '#e8f3e0', '#f5dede']) : '#ffffff';
    const color = tinted ? pick(['#1a3c8c', '#202020', '#5a1010']) : '#000000';
    for (let i = 0; i < n; i++) {
      const r = random();
      const text = r < 0.45 ? pick(CHINESE) : r < 0.8 ? pick(ENGLISH) : pick(MIXED);
      const cjk = /[\u4e00-\u9fff]/.test(text);
      const px = 14 + Math.floor(random() * 35);
      lines.push(text);
      strips.push(await strip(text, px, cjk, random, color, background));
    }
    const metas = await Promise.all(strips.map((s) => sharp(s).metadata()));
    const width = Math.max(...metas.map((m) => m.width!)) + 40;
    const height = metas.reduce((a, m) => a + m.height!, 0) + 40;
    let top = 20;
    const composites = strips.map((input, i) => {
      const c = { input, top, left: 20 };
      top += metas[i]!.height!;
      return c;
    });
    let png: Buffer = await sharp({ create: { width, height, channels: 3, background } })
      .composite(composites)
      .png()
      .toBuffer();
    if (kind === 'hard') {
      const angle = (random() * 2 - 1) * 3;
      png = await sharp(png).rotate(angle, { background }).png().toBuffer();
      png = await sharp(png)
        .blur(0.4 + random() * 0.8)
        .png()
        .toBuffer();
      png = await addNoise(png, 10 + random() * 20, random);
      png = await sharp(png)
        .jpeg({ quality: 40 + Math.floor(random() * 30) })
        .toBuffer();
    }
    pages.push({ id: `${kind}-${String(p).padStart(3, '0')}`, kind, lines, png });
  }
  return pages;
}
