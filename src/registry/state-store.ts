import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import semver from 'semver';
import { z } from 'zod';
import { errnoOf, HotocrError, messageOf } from '../errors.js';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

const versionRef = z.strictObject({
  version: z.string(),
  sha256,
  package: z.string(),
  /**
   * When the package was accepted (ISO time): a restart judges certificate validity and the
   * manifest's `expires` at this time, the trust store at the time of the restart.
   */
  acceptedAt: z.string().optional(),
});

const splitRef = z.strictObject({
  version: z.string(),
  weight: z.number().int().min(1).max(100),
  sha256,
  package: z.string(),
  acceptedAt: z.string().optional(),
});

/** The format this code writes. */
export const STATE_FORMAT = 2;

const stateV1 = z.strictObject({
  format: z.literal(1),
  active: z.record(z.string(), versionRef),
  history: z.record(z.string(), z.array(versionRef)),
  /** The highest version activated per source and model name. */
  highest: z.record(z.string(), z.record(z.string(), z.string())),
});

const stateV2 = z.strictObject({
  format: z.literal(2),
  /** The active version per model name. */
  active: z.record(z.string(), versionRef),
  /** The versions activated per model name, most recent last (for rollback after a restart). */
  history: z.record(z.string(), z.array(versionRef)),
  /** The highest version ever activated per model name, whatever the channel: downgrade protection. */
  highest: z.record(z.string(), z.string()),
  /**
   * Packages handed over (by SHA-256), accepted or refused: a rescan of the watched folder or
   * a look at a registry does not take them again, across restarts.
   */
  handled: z.record(
    sha256,
    z.strictObject({ at: z.string(), outcome: z.enum(['accepted', 'refused']), code: z.string().optional() }),
  ),
  /** The traffic split per model name, with what a restart needs to load its versions again. */
  routing: z.record(
    z.string(),
    z.strictObject({
      split: z.array(splitRef),
      /** The model's pinning switch as PUT /v1/routing last set it, if it did. */
      allowPinning: z.boolean().optional(),
    }),
  ),
  /** The pinning switch before it was kept per model (read, never written). */
  allowPinning: z.boolean().optional(),
});

export type PersistedState = z.infer<typeof stateV2>;
export type VersionRef = z.infer<typeof versionRef>;
export type SplitRef = z.infer<typeof splitRef>;

export const EMPTY_STATE: PersistedState = Object.freeze({
  format: 2,
  active: {},
  history: {},
  highest: {},
  handled: {},
  routing: {},
}) as PersistedState;

/** At most this many handled packages are remembered (the oldest are forgotten first). */
export const HANDLED_LIMIT = 1000;

/**
 * Today's format from the one before it: the highest version across sources becomes the
 * one highest per model, and every package in the history counts as handled.
 */
function fromV1(old: z.infer<typeof stateV1>): PersistedState {
  const highest: Record<string, string> = {};
  for (const perName of Object.values(old.highest))
    for (const [name, version] of Object.entries(perName))
      if (!highest[name] || semver.gt(version, highest[name])) highest[name] = version;
  const handled: PersistedState['handled'] = {};
  for (const refs of Object.values(old.history))
    for (const ref of refs) handled[ref.sha256] = { at: new Date(0).toISOString(), outcome: 'accepted' };
  return { format: 2, active: old.active, history: old.history, highest, handled, routing: {} };
}

/** The registry's state file, written atomically: a crash leaves the old file or the new one, never a mix. */
export class StateStore {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /**
   * The saved state (an older format is read and brought up to date), or the empty state
   * when there is none yet. A damaged file, or one a newer hotocr wrote, is an error, not a reset.
   */
  async read(): Promise<PersistedState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return structuredClone(EMPTY_STATE);
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw this.#damaged(cause);
    }
    const format = (parsed as { format?: unknown } | null)?.format;
    if (typeof format === 'number' && format > STATE_FORMAT)
      throw new HotocrError(
        'STATE_INVALID',
        `The state file ${this.path} was written by a newer hotocr (format ${format}); this one reads formats 1 to ${STATE_FORMAT}. Run the newer hotocr, or move the file away to start with no active version.`,
      );
    try {
      return format === 1 ? fromV1(stateV1.parse(parsed)) : stateV2.parse(parsed);
    } catch (cause) {
      throw this.#damaged(cause);
    }
  }

  #damaged(cause: unknown): HotocrError {
    return new HotocrError(
      'STATE_INVALID',
      `The state file ${this.path} is damaged (${messageOf(cause)}); move it away to start with no active version.`,
      { cause },
    );
  }

  /** Writes to a temporary file, fsyncs it, renames it over the state file, and fsyncs the folder. */
  async write(state: PersistedState): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.state.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const file = await open(tmp, 'wx', 0o644);
      try {
        await file.writeFile(`${JSON.stringify(state, null, 2)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    const folder = await open(dir, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }
}
