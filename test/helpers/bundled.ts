import type { LoaderPackage, OcrWorkerPool } from '../../src/loaders/index.js';
import { decodeImage } from '../../src/ocr/index.js';
import { ensureBundledPackage } from '../../src/pack/index.js';
import { entryDigests, TrustStore, type VerifiedPackage, verifyPackage } from '../../src/verify/index.js';
import { renderText } from './images.js';

/**
 * The bundled PP-OCRv4 package under `home` (made there once, with a development key),
 * verified with that key and its bytes kept, as the server loads it. Each call verifies
 * again: a new `files` map, so a test that moves or changes bytes touches no other's.
 */
export async function verifiedBundled(home: string): Promise<VerifiedPackage> {
  const bundled = await ensureBundledPackage(home);
  return verifyPackage(bundled.packagePath, {
    trust: await TrustStore.load(bundled.trustPath),
    keepBytes: true,
  });
}

/** What the pool reads in a rendered image of `line`, spaces aside (the recogniser drops some). */
export async function readsAs(pool: OcrWorkerPool, line: string): Promise<string> {
  const result = await pool.read(await decodeImage(await renderText([line])));
  return result.lines.map((l) => l.text.replaceAll(' ', '')).join('');
}

/** A verified package with the digests it was verified with, as the server hands it to a loader. */
export function withDigests(pkg: VerifiedPackage): LoaderPackage {
  return { ...pkg, digests: entryDigests(pkg) };
}

/** CPU time of the whole process (every thread) that `load` takes, in ms; the pool is released after. */
export async function loadCpuMs(load: () => Promise<OcrWorkerPool>): Promise<number> {
  const before = process.cpuUsage();
  const pool = await load();
  const used = process.cpuUsage(before);
  await pool.release();
  return (used.user + used.system) / 1000;
}
