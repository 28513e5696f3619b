import { resolve } from 'node:path';

/**
 * The one place that reads the environment. Commands take their settings from flags first,
 * then from these variables, then from defaults.
 */
export interface Environment {
  /** HOTOCR_HOME: the data folder (keys, state, the bundled package). Default `./.hotocr`. */
  readonly home: string;
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  return { home: resolve(env.HOTOCR_HOME || '.hotocr') };
}
