import { resolve } from 'node:path';
import { HotocrError } from './errors.js';

/**
 * The one place that reads the environment. Commands take each setting from its flag first,
 * then from its HOTOCR_* variable, then from the default.
 */
export interface Environment {
  /** HOTOCR_HOME: the data folder (keys, state, the bundled package). Default `./.hotocr`. */
  readonly home: string;
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  return { home: resolve(env.HOTOCR_HOME || '.hotocr') };
}

/** Everything `hotocr serve` runs with, read once. */
export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  readonly data: string;
  /** A package to serve instead of the bundled model, with the trust store that may sign it. */
  readonly model?: string;
  readonly trust?: string;
  readonly allowLegacySignatures: boolean;
  readonly bodyLimit: number;
  readonly logLevel: string;
}

export interface ServeFlags {
  port?: string;
  host?: string;
  data?: string;
  model?: string;
  trust?: string;
  allowLegacySignatures?: boolean;
  bodyLimit?: string;
  logLevel?: string;
}

function integer(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HotocrError(
      'CONFIG_INVALID',
      `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}.`,
    );
  }
  return n;
}

export function readServeConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined);
  const model = pick(flags.model, 'HOTOCR_MODEL');
  const trust = pick(flags.trust, 'HOTOCR_TRUST');
  if (model && !trust)
    throw new HotocrError(
      'CONFIG_INVALID',
      '--model needs --trust (HOTOCR_TRUST): the keys or roots that may sign it.',
    );
  return {
    port: integer('--port (HOTOCR_PORT)', pick(flags.port, 'HOTOCR_PORT') ?? '8080', 0, 65535),
    host: pick(flags.host, 'HOTOCR_HOST') ?? '0.0.0.0',
    data: resolve(pick(flags.data, 'HOTOCR_HOME') ?? '.hotocr'),
    ...(model ? { model } : {}),
    ...(trust ? { trust } : {}),
    allowLegacySignatures: flags.allowLegacySignatures ?? env.HOTOCR_ALLOW_LEGACY_SIGNATURES === '1',
    bodyLimit: integer(
      '--body-limit (HOTOCR_BODY_LIMIT)',
      pick(flags.bodyLimit, 'HOTOCR_BODY_LIMIT') ?? String(20 * 1024 * 1024),
      1024,
      1024 ** 3,
    ),
    logLevel: pick(flags.logLevel, 'HOTOCR_LOG_LEVEL') ?? 'info',
  };
}
