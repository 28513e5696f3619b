#!/usr/bin/env node
// Renders assets/warmup.png, the image every new version reads before it may serve.
// Needs the DejaVu fonts (Debian fonts-dejavu-core). The PNG is committed: run this only to change it.
import sharp from 'sharp';

const text = await sharp({
  text: {
    text: '<span foreground="black" size="24576">hotocr warm-up 2026</span>',
    font: 'DejaVu Sans',
    dpi: 72,
    rgba: true,
  },
})
  .png()
  .toBuffer();
await sharp(text)
  .flatten({ background: '#ffffff' })
  .extend({ top: 24, bottom: 24, left: 24, right: 24, background: '#ffffff' })
  .greyscale()
  .png({ compressionLevel: 9, palette: true, colours: 16 })
  .toFile(new URL('../assets/warmup.png', import.meta.url).pathname);
