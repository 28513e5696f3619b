import sharp from 'sharp';

export interface LineStyle {
  /** Pango font description family, e.g. 'DejaVu Sans' or 'WenQuanYi Micro Hei'. */
  readonly font?: string;
  /** Text height in pixels (roughly the em size). */
  readonly px?: number;
  readonly color?: string;
  readonly background?: string;
  /** White space around the text, in pixels. */
  readonly margin?: number;
}

function escapeMarkup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Renders lines of text (one per entry) into a PNG, with Pango through sharp and the system's fonts. */
export async function renderText(lines: readonly string[], style: LineStyle = {}): Promise<Buffer> {
  const px = style.px ?? 32;
  const markup = lines
    .map(
      (l) =>
        `<span foreground="${style.color ?? '#000000'}" size="${Math.round(px * 1024 * 0.75)}">${escapeMarkup(l)}</span>`,
    )
    .join('\n');
  const text = await sharp({
    text: {
      text: markup,
      font: style.font ?? 'DejaVu Sans',
      dpi: 72,
      rgba: true,
      spacing: Math.round(px * 0.8),
    },
  })
    .png()
    .toBuffer();
  const m = style.margin ?? 30;
  return sharp(text)
    .flatten({ background: style.background ?? '#ffffff' })
    .extend({ top: m, bottom: m, left: m, right: m, background: style.background ?? '#ffffff' })
    .png()
    .toBuffer();
}

/** Character error rate: Levenshtein distance over code points divided by the reference length. */
export function characterErrorRate(reference: string, hypothesis: string): number {
  const a = [...reference];
  const b = [...hypothesis];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return a.length === 0 ? (b.length === 0 ? 0 : 1) : prev[b.length]! / a.length;
}
