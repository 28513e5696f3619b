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
  /** The watched folder, if any. */
  readonly models?: string;
  readonly settleMs: number;
  /** Previously active versions kept loaded for an instant rollback. */
  readonly keepWarm: number;
  /** Where refused packages from the watched folder are moved, if anywhere. */
  readonly quarantine?: string;
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
  models?: string;
  settleMs?: string;
  keepWarm?: string;
  quarantine?: string;
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
  const models = pick(flags.models, 'HOTOCR_MODELS');
  const quarantine = pick(flags.quarantine, 'HOTOCR_QUARANTINE');
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
    ...(models ? { models: resolve(models) } : {}),
    settleMs: integer(
      '--settle-ms (HOTOCR_SETTLE_MS)',
      pick(flags.settleMs, 'HOTOCR_SETTLE_MS') ?? '1000',
      0,
      600_000,
    ),
    keepWarm: integer(
      '--keep-warm (HOTOCR_KEEP_WARM)',
      pick(flags.keepWarm, 'HOTOCR_KEEP_WARM') ?? '0',
      0,
      16,
    ),
    ...(quarantine ? { quarantine: resolve(quarantine) } : {}),
    bodyLimit: integer(
      '--body-limit (HOTOCR_BODY_LIMIT)',
      pick(flags.bodyLimit, 'HOTOCR_BODY_LIMIT') ?? String(20 * 1024 * 1024),
      1024,
      1024 ** 3,
    ),
    logLevel: pick(flags.logLevel, 'HOTOCR_LOG_LEVEL') ?? 'info',
  };
}
