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
  /** Which generator made it: common sentences, or random words, table rows and characters. */
  readonly set: 'sentences' | 'words';
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

/** Stacks rendered lines into one page; a hard page is then rotated, blurred, noised and JPEG-compressed. */
async function compose(
  strips: readonly Buffer[],
  background: string,
  kind: 'clean' | 'hard',
  random: () => number,
): Promise<Buffer> {
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
  return png;
}

/** A page's colours: black on white, or (on 60% of hard pages) coloured text on a tint. */
function colours(kind: 'clean' | 'hard', random: () => number): { background: string; color: string } {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const tinted = kind === 'hard' && random() < 0.6;
  const background = tinted ? pick(['#f3e6b4', '#dfeef7', '#e8f3e0', '#f5dede']) : '#ffffff';
  const color = tinted ? pick(['#1a3c8c', '#202020', '#5a1010']) : '#000000';
  return { background, color };
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
    const { background, color } = colours(kind, random);
    for (let i = 0; i < n; i++) {
      const r = random();
      const text = r < 0.45 ? pick(CHINESE) : r < 0.8 ? pick(ENGLISH) : pick(MIXED);
      const cjk = /[\u4e00-\u9fff]/.test(text);
      const px = 14 + Math.floor(random() * 35);
      lines.push(text);
      strips.push(await strip(text, px, cjk, random, color, background));
    }
    const png = await compose(strips, background, kind, random);
    pages.push({ id: `${kind}-${String(p).padStart(3, '0')}`, set: 'sentences', kind, lines, png });
  }
  return pages;
}

const WORDS = (
  'Price Total Release Quantity Version Customer Invoice Date Amount Status Address Account ' +
  'Balance Order Item Description Unit Tax Discount Shipping Payment Method Reference Number ' +
  'Name Email Phone Country City Region Product Category Supplier Warehouse Stock Level Report ' +
  'Summary Notes Approved Pending Closed Open Delivery Receipt Contract Project Budget Owner ' +
  'Manager Team Schedule Start End Week Month Year Monday Friday Credit Debit Weight Height ' +
  'Width Color Size Model Serial Batch Lot Expiry Origin Destination Carrier Tracking Route ' +
  'the and for with from into over under between after before each every other new old first ' +
  'last next small large quick simple final total net gross daily monthly annual public local ' +
  'global open free main back front high low early late fast slow north south east west'
).split(' ');
/** Common characters, drawn at random so a line cannot be guessed from its start. */
const HANZI = [
  ...'的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持音跑热鱼底改栗归寺谨',
];

/**
 * A second evaluation set, unlike the sentences above: runs of random words, table rows
 * whose cells are set apart by wide gaps, random Chinese characters, and characters mixed
 * with words and numbers, 12-60 px, in DejaVu Sans, Serif and Sans Mono and WenQuanYi
 * Micro Hei; every other page hard as above. The truth of a table row is its cells
 * separated by one space.
 */
export async function makeWordPages(count: number, seed = 20261207): Promise<Page[]> {
  const random = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const word = () => {
    const w = pick(WORDS);
    const r = random();
    return r < 0.15 ? String(int(1, 99999)) : r < 0.3 ? w.toLowerCase() : w;
  };
  const hanzi = (n: number) => Array.from({ length: n }, () => pick(HANZI)).join('');
  const pages: Page[] = [];
  for (let p = 0; p < count; p++) {
    const kind = p % 2 === 0 ? 'clean' : 'hard';
    const n = 3 + Math.floor(random() * 4);
    const lines: string[] = [];
    const strips: Buffer[] = [];
    const { background, color } = colours(kind, random);
    for (let i = 0; i < n; i++) {
      const r = random();
      let truth: string;
      let shown: string;
      let font: string;
      if (r < 0.3) {
        truth = Array.from({ length: int(2, 7) }, word).join(' ');
        shown = truth;
        font = pick(['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono']);
      } else if (r < 0.5) {
        const cells = Array.from({ length: int(3, 5) }, word);
        truth = cells.join(' ');
        shown = cells.join(' '.repeat(int(3, 8)));
        font = pick(['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono']);
      } else if (r < 0.8) {
        truth = hanzi(int(4, 14));
        shown = truth;
        font = 'WenQuanYi Micro Hei';
      } else {
        truth = `${hanzi(int(2, 6))} ${random() < 0.5 ? word() : String(int(10, 99999))} ${hanzi(int(1, 4))}`;
        shown = truth;
        font = 'WenQuanYi Micro Hei';
      }
      const px = int(12, 60);
      lines.push(truth);
      strips.push(await renderText([shown], { font, px, margin: Math.round(px * 0.6), color, background }));
    }
    const png = await compose(strips, background, kind, random);
    pages.push({ id: `words-${kind}-${String(p).padStart(3, '0')}`, set: 'words', kind, lines, png });
  }
  return pages;
}
