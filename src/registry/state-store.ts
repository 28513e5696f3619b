import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { errnoOf, HotocrError, messageOf } from '../errors.js';

const versionRef = z.strictObject({
  version: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  package: z.string(),
});

const stateSchema = z.strictObject({
  format: z.literal(1),
  /** The active version per model name. */
  active: z.record(z.string(), versionRef),
  /** The versions activated per model name, most recent last (for rollback after a restart). */
  history: z.record(z.string(), z.array(versionRef)),
  /** The highest version activated per source and model name: downgrade protection. */
  highest: z.record(z.string(), z.record(z.string(), z.string())),
});

export type PersistedState = z.infer<typeof stateSchema>;
export type VersionRef = z.infer<typeof versionRef>;

export const EMPTY_STATE: PersistedState = Object.freeze({
  format: 1,
  active: {},
  history: {},
  highest: {},
}) as PersistedState;

/** The registry's state file, written atomically: a crash leaves the old file or the new one, never a mix. */
export class StateStore {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** The saved state, or the empty state when there is none yet. A damaged file is an error, not a reset. */
  async read(): Promise<PersistedState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return structuredClone(EMPTY_STATE);
      throw error;
    }
    try {
      return stateSchema.parse(JSON.parse(text));
    } catch (cause) {
      throw new HotocrError(
        'STATE_INVALID',
        `The state file ${this.path} is damaged (${messageOf(cause)}); move it away to start with no active version.`,
        { cause },
      );
    }
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
