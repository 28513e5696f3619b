import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
  /** Time allowed for a package's trust stage (certificate chain and signature), ms. */
  readonly verifyTimeoutMs: number;
  /** The watched folder, if any. */
  readonly models?: string;
  readonly settleMs: number;
  /** Previously active versions kept loaded for an instant rollback. */
  readonly keepWarm: number;
  /** Nice value a version loads and warms up at while another serves (0: same priority as serving). */
  readonly loadNice: number;
  /** Keep a released version's inference threads for the next load (warm compiled JavaScript). */
  readonly keepThreads: boolean;
  /** Where refused packages from the watched folder are moved, if anywhere. */
  readonly quarantine?: string;
  readonly bodyLimit: number;
  readonly logLevel: string;
  /** The admin bearer token; without one every admin call is refused. */
  readonly adminToken?: string;
  /** Largest accepted package upload. */
  readonly uploadLimit: number;
  /** Inferences running at once, and requests allowed to wait behind them. */
  readonly maxInflight: number;
  readonly maxQueue: number;
  /** How long a request may wait for and run its inference before 503/504. */
  readonly requestTimeoutMs: number;
  /** How long a client may take to send its request headers. */
  readonly headersTimeoutMs: number;
  /** Whether clients may pin a version with the X-Model-Version header. */
  readonly allowPinning: boolean;
  /** Canary rollback margins (fractions); the guard is on when either is set. */
  readonly canaryErrorMargin?: number;
  readonly canaryP99Margin?: number;
  /** Requests the canary and the stable version must each answer before they are compared. */
  readonly canaryMinRequests: number;
  /** Loader plugins (module paths or package names), asked before the built-in loaders, in order. */
  readonly loaders: readonly string[];
  /** The runtime of packages whose manifest names none. */
  readonly runtime: string;
  /** An OCI repository (REGISTRY/REPOSITORY[:TAG]) whose packages the server follows. */
  readonly registry?: string;
  readonly registryPollMs: number;
  /** Registries spoken to over plain HTTP besides loopback ones. */
  readonly registryInsecure: readonly string[];
  /** The shared secret the registry's notifications carry. */
  readonly registryWebhookSecret?: string;
  /** A bearer token for the registry (HOTOCR_REGISTRY_TOKEN; else Docker's config file is read). */
  readonly registryToken?: string;
  /** Other replicas, for the fleet view: base URLs, and/or a headless Service's host:port. */
  readonly peers: readonly string[];
  readonly peersDns?: string;
}

export interface ServeFlags {
  port?: string;
  host?: string;
  data?: string;
  model?: string;
  trust?: string;
  allowLegacySignatures?: boolean;
  verifyTimeoutMs?: string;
  models?: string;
  settleMs?: string;
  keepWarm?: string;
  loadNice?: string;
  /** False with --no-keep-threads. */
  keepThreads?: boolean;
  quarantine?: string;
  bodyLimit?: string;
  logLevel?: string;
  adminToken?: string;
  adminTokenFile?: string;
  uploadLimit?: string;
  maxInflight?: string;
  maxQueue?: string;
  requestTimeoutMs?: string;
  headersTimeoutMs?: string;
  allowPinning?: boolean;
  canaryErrorMargin?: string;
  canaryP99Margin?: string;
  canaryMinRequests?: string;
  loader?: string[];
  runtime?: string;
  registry?: string;
  registryPollMs?: string;
  registryInsecure?: string[];
  registryWebhookSecretFile?: string;
  peers?: string;
  peersDns?: string;
}

/** Admin tokens shorter than this are refused: they would be guessable. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

function adminToken(flags: ServeFlags, env: NodeJS.ProcessEnv): string | undefined {
  const file = flags.adminTokenFile ?? (env.HOTOCR_ADMIN_TOKEN_FILE || undefined);
  const inline = flags.adminToken ?? (env.HOTOCR_ADMIN_TOKEN || undefined);
  if (file && inline)
    throw new HotocrError(
      'CONFIG_INVALID',
      'Give the admin token once: either --admin-token-file (HOTOCR_ADMIN_TOKEN_FILE) or --admin-token (HOTOCR_ADMIN_TOKEN).',
    );
  let token = inline;
  if (file) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new HotocrError(
        'CONFIG_INVALID',
        `Cannot read the admin token file ${file}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
  if (token === undefined) return undefined;
  if (token.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(token))
    throw new HotocrError(
      'CONFIG_INVALID',
      `The admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters with no spaces; make one with: openssl rand -hex 32`,
    );
  return token;
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

function fraction(name: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > max) {
    throw new HotocrError(
      'CONFIG_INVALID',
      `${name} must be a fraction from 0 to ${max} (0.05 is five percent), not ${JSON.stringify(value)}.`,
    );
  }
  return n;
}

/** An on/off environment variable: 1 or 0, or unset for `fallback`; anything else is refused. */
function onOff(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === '1' || value === '0') return value === '1';
  throw new HotocrError('CONFIG_INVALID', `${name} must be 1 or 0, not ${JSON.stringify(value)}.`);
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/** A shared secret from a file or the environment, at least as long as an admin token. */
function secret(name: string, file: string | undefined, inline: string | undefined): string | undefined {
  let value = inline;
  if (file) {
    try {
      value = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new HotocrError(
        'CONFIG_INVALID',
        `Cannot read ${file} for ${name}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
  if (value !== undefined && (value.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(value)))
    throw new HotocrError(
      'CONFIG_INVALID',
      `${name} must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters with no spaces; make one with: openssl rand -hex 32`,
    );
  return value;
}

function runtimeName(value: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(value))
    throw new HotocrError(
      'CONFIG_INVALID',
      `--runtime (HOTOCR_RUNTIME) must name a loader such as onnxruntime-node or onnxruntime-wasm, not ${JSON.stringify(value)}.`,
    );
  return value;
}

export function readServeConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined);
  const model = pick(flags.model, 'HOTOCR_MODEL');
  const trust = pick(flags.trust, 'HOTOCR_TRUST');
  const models = pick(flags.models, 'HOTOCR_MODELS');
  const quarantine = pick(flags.quarantine, 'HOTOCR_QUARANTINE');
  const token = adminToken(flags, env);
  const registry = pick(flags.registry, 'HOTOCR_REGISTRY');
  const peersDns = pick(flags.peersDns, 'HOTOCR_PEERS_DNS');
  const canaryErrorMargin = fraction(
    '--canary-error-margin (HOTOCR_CANARY_ERROR_MARGIN)',
    pick(flags.canaryErrorMargin, 'HOTOCR_CANARY_ERROR_MARGIN'),
    1,
  );
  const canaryP99Margin = fraction(
    '--canary-p99-margin (HOTOCR_CANARY_P99_MARGIN)',
    pick(flags.canaryP99Margin, 'HOTOCR_CANARY_P99_MARGIN'),
    100,
  );
  const webhookSecret = secret(
    '--registry-webhook-secret-file (HOTOCR_REGISTRY_WEBHOOK_SECRET_FILE) or HOTOCR_REGISTRY_WEBHOOK_SECRET',
    pick(flags.registryWebhookSecretFile, 'HOTOCR_REGISTRY_WEBHOOK_SECRET_FILE'),
    env.HOTOCR_REGISTRY_WEBHOOK_SECRET || undefined,
  );
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
    allowLegacySignatures:
      flags.allowLegacySignatures ??
      onOff('HOTOCR_ALLOW_LEGACY_SIGNATURES', env.HOTOCR_ALLOW_LEGACY_SIGNATURES, false),
    verifyTimeoutMs: integer(
      '--verify-timeout-ms (HOTOCR_VERIFY_TIMEOUT_MS)',
      pick(flags.verifyTimeoutMs, 'HOTOCR_VERIFY_TIMEOUT_MS') ?? '2000',
      1,
      600_000,
    ),
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
    loadNice: integer(
      '--load-nice (HOTOCR_LOAD_NICE)',
      pick(flags.loadNice, 'HOTOCR_LOAD_NICE') ?? '10',
      0,
      19,
    ),
    keepThreads: flags.keepThreads !== false && onOff('HOTOCR_KEEP_THREADS', env.HOTOCR_KEEP_THREADS, true),
    ...(quarantine ? { quarantine: resolve(quarantine) } : {}),
    bodyLimit: integer(
      '--body-limit (HOTOCR_BODY_LIMIT)',
      pick(flags.bodyLimit, 'HOTOCR_BODY_LIMIT') ?? String(20 * 1024 * 1024),
      1024,
      1024 ** 3,
    ),
    logLevel: pick(flags.logLevel, 'HOTOCR_LOG_LEVEL') ?? 'info',
    ...(token ? { adminToken: token } : {}),
    uploadLimit: integer(
      '--upload-limit (HOTOCR_UPLOAD_LIMIT)',
      pick(flags.uploadLimit, 'HOTOCR_UPLOAD_LIMIT') ?? String(1024 ** 3),
      1024,
      64 * 1024 ** 3,
    ),
    maxInflight: integer(
      '--max-inflight (HOTOCR_MAX_INFLIGHT)',
      pick(flags.maxInflight, 'HOTOCR_MAX_INFLIGHT') ?? String(availableParallelism()),
      1,
      1024,
    ),
    maxQueue: integer(
      '--max-queue (HOTOCR_MAX_QUEUE)',
      pick(flags.maxQueue, 'HOTOCR_MAX_QUEUE') ?? '32',
      0,
      100_000,
    ),
    requestTimeoutMs: integer(
      '--request-timeout-ms (HOTOCR_REQUEST_TIMEOUT_MS)',
      pick(flags.requestTimeoutMs, 'HOTOCR_REQUEST_TIMEOUT_MS') ?? '30000',
      100,
      3_600_000,
    ),
    headersTimeoutMs: integer(
      '--headers-timeout-ms (HOTOCR_HEADERS_TIMEOUT_MS)',
      pick(flags.headersTimeoutMs, 'HOTOCR_HEADERS_TIMEOUT_MS') ?? '15000',
      100,
      600_000,
    ),
    allowPinning: flags.allowPinning ?? onOff('HOTOCR_ALLOW_PINNING', env.HOTOCR_ALLOW_PINNING, false),
    ...(canaryErrorMargin !== undefined ? { canaryErrorMargin } : {}),
    ...(canaryP99Margin !== undefined ? { canaryP99Margin } : {}),
    canaryMinRequests: integer(
      '--canary-min-requests (HOTOCR_CANARY_MIN_REQUESTS)',
      pick(flags.canaryMinRequests, 'HOTOCR_CANARY_MIN_REQUESTS') ?? '50',
      1,
      1_000_000,
    ),
    loaders:
      flags.loader ??
      (env.HOTOCR_LOADERS ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    runtime: runtimeName(pick(flags.runtime, 'HOTOCR_RUNTIME') ?? 'onnxruntime-node'),
    ...(registry ? { registry } : {}),
    registryPollMs: integer(
      '--registry-poll-ms (HOTOCR_REGISTRY_POLL_MS)',
      pick(flags.registryPollMs, 'HOTOCR_REGISTRY_POLL_MS') ?? '30000',
      100,
      86_400_000,
    ),
    registryInsecure: [...(flags.registryInsecure ?? []), ...list(env.HOTOCR_REGISTRY_INSECURE)],
    ...(webhookSecret ? { registryWebhookSecret: webhookSecret } : {}),
    ...(env.HOTOCR_REGISTRY_TOKEN ? { registryToken: env.HOTOCR_REGISTRY_TOKEN } : {}),
    peers: list(pick(flags.peers, 'HOTOCR_PEERS')),
    ...(peersDns ? { peersDns } : {}),
  };
}
