import { PackageRejectedError } from '../errors.js';
import { OcrEngine, paramsFromManifest } from '../ocr/index.js';
import type { VerifiedPackage } from '../verify/index.js';
import { OrtGraphSession, type SessionOptions } from './onnxruntime-node.js';

/** An OCR model loaded from a verified package: the engine, and what frees its native memory. */
export interface LoadedOcrModel {
  readonly name: string;
  readonly version: string;
  readonly engine: OcrEngine;
  /** Frees every session. Safe to call twice. */
  release(): Promise<void>;
}

/**
 * Opens the package's graphs in onnxruntime from the verified bytes (the package must have
 * been verified with `keepBytes`), checks they fit their roles, and builds the engine.
 * On any failure every session already created is released.
 */
export async function loadOcrModel(
  pkg: VerifiedPackage,
  options: SessionOptions = {},
): Promise<LoadedOcrModel> {
  const m = pkg.manifest;
  const bytes = (name: string | undefined): Buffer | undefined => {
    if (name === undefined) return undefined;
    const b = pkg.files.get(name);
    if (!b)
      throw new PackageRejectedError(
        'GRAPH_INVALID',
        `${name} was not kept when the package was verified; verify with keepBytes.`,
      );
    return b;
  };
  const sessions: OrtGraphSession[] = [];
  const open = async (role: string, name: string | undefined) => {
    const b = bytes(name);
    if (!b) return undefined;
    const s = await OrtGraphSession.create(role, b, options);
    sessions.push(s);
    return s;
  };
  const releaseAll = async () => {
    await Promise.all(sessions.map((s) => s.release()));
  };
  try {
    const det = await open('det', m.graphs.det);
    const rec = (await open('rec', m.graphs.rec))!;
    const cls = await open('cls', m.graphs.cls);
    const dictionary = bytes(m.dict)!.toString('utf8');
    const engine = await OcrEngine.create(
      { ...(det ? { det } : {}), rec, ...(cls ? { cls } : {}) },
      dictionary,
      paramsFromManifest(m),
    );
    return { name: m.name, version: m.version, engine, release: releaseAll };
  } catch (error) {
    await releaseAll();
    throw error;
  }
}
