import { readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Option } from 'commander';
import { HotocrError, messageOf } from './errors.js';

/**
 * The one place that reads the environment. Every setting of `hotocr serve` is one row of
 * {@link SERVE_SETTINGS}: its flag, its HOTOCR_* variable, its parser, its default and its
 * help. The row makes the command-line option and the config value; the flag wins over the
 * variable, the variable over the default.
 */

type Flags = Readonly<Record<string, unknown>>;
type Env = NodeJS.ProcessEnv;

/** One setting: the options it adds to `hotocr serve`, and how its value is read. */
export interface Setting<T> {
  /** Commander options (none for a setting read from the environment alone). */
  readonly options: readonly Option[];
  /** Its value: from the flags (by their options' attribute names), else the environment, else the default. */
  readonly read: (flags: Flags, env: Env) => T;
}

function invalid(message: string): never {
  throw new HotocrError('SETTING_INVALID', message);
}

/** "--port (HOTOCR_PORT)": how a setting is named in its errors. */
function label(flag: string | undefined, env: string | undefined): string {
  const name = flag?.split(/[ ,]/)[0];
  return name && env ? `${name} (${env})` : (name ?? env ?? 'setting');
}

function helpText(help: string, env: string | undefined, shown: string | undefined): string {
  const notes = [env, shown !== undefined ? `default ${shown}` : undefined].filter(Boolean);
  return notes.length > 0 ? `${help} (${notes.join(', ')})` : help;
}

const attribute = (option: Option) => option.attributeName();

/** A setting taking one value, parsed from the flag's or the variable's text; with `fallback`, never undefined. */
function value<T>(spec: {
  flag: string;
  env?: string;
  help: string;
  parse: (text: string, name: string) => T;
  fallback: string;
  /** How the default reads in the help, when not as `fallback` itself. */
  shown?: string;
}): Setting<T>;
function value<T>(spec: {
  flag: string;
  env?: string;
  help: string;
  parse: (text: string, name: string) => T;
}): Setting<T | undefined>;
function value<T>(spec: {
  flag: string;
  env?: string;
  help: string;
  parse: (text: string, name: string) => T;
  fallback?: string;
  shown?: string;
}): Setting<T | undefined> {
  const option = new Option(spec.flag, helpText(spec.help, spec.env, spec.shown ?? spec.fallback));
  const name = label(spec.flag, spec.env);
  return {
    options: [option],
    read(flags, env) {
      const given = flags[attribute(option)];
      const text =
        typeof given === 'string'
          ? given
          : ((spec.env ? env[spec.env] || undefined : undefined) ?? spec.fallback);
      return text === undefined ? undefined : spec.parse(text, name);
    },
  };
}

/** An on/off setting: `--allow-x` turns it on, `--no-x` off; the variable takes 1 or 0. */
function toggle(spec: { flag: string; env: string; help: string }): Setting<boolean> {
  const negated = spec.flag.startsWith('--no-');
  const option = new Option(spec.flag, helpText(spec.help, `${spec.env}=${negated ? '0' : '1'}`, undefined));
  return {
    options: [option],
    read(flags, env) {
      const given = flags[attribute(option)];
      // Commander sets a --no- flag's attribute to true unless it was given.
      if (negated ? given === false : given === true) return !negated;
      return onOff(spec.env, env[spec.env], negated);
    },
  };
}

/**
 * A list: the flag repeated (each value comma-separated too, with `split`), or the variable,
 * comma-separated; with `both`, the two together.
 */
function list(spec: {
  flag: string;
  env: string;
  help: string;
  both?: boolean;
  split?: boolean;
}): Setting<readonly string[]> {
  const option = new Option(
    spec.flag,
    helpText(spec.help, `${spec.env}, comma-separated`, undefined),
  ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
  return {
    options: [option],
    read(flags, env) {
      const given = flags[attribute(option)];
      const values = Array.isArray(given) ? (given as string[]) : typeof given === 'string' ? [given] : [];
      const fromFlags = spec.split ? values.flatMap(commaList) : values;
      const fromEnv = commaList(env[spec.env]);
      if (spec.both) return [...fromFlags, ...fromEnv];
      return fromFlags.length > 0 ? fromFlags : fromEnv;
    },
  };
}

/** A value from the environment alone: no flag. */
function environment<T>(name: string, parse: (text: string | undefined) => T): Setting<T> {
  return { options: [], read: (_flags, env) => parse(env[name] || undefined) };
}

/**
 * A shared secret from a file (the flag or its variable) or given inline (a flag, or the
 * variable alone), once; at least as long as an admin token, with no spaces.
 */
function secret(spec: {
  file: { flag: string; env: string; help: string };
  inline: { flag?: string; env: string; help?: string };
}): Setting<string | undefined> {
  // With no inline flag, the file's help names the variable that holds the secret itself.
  const fileEnv = spec.inline.flag ? spec.file.env : `${spec.file.env}, or ${spec.inline.env}`;
  const fileOption = new Option(spec.file.flag, helpText(spec.file.help, fileEnv, undefined));
  const inlineOption = spec.inline.flag
    ? new Option(spec.inline.flag, helpText(spec.inline.help ?? '', spec.inline.env, undefined))
    : undefined;
  const fileName = label(spec.file.flag, spec.file.env);
  const inlineName = label(spec.inline.flag, spec.inline.env);
  return {
    options: inlineOption ? [fileOption, inlineOption] : [fileOption],
    read(flags, env) {
      const pick = (option: Option | undefined, name: string) => {
        const given = option ? flags[attribute(option)] : undefined;
        return typeof given === 'string' ? given : env[name] || undefined;
      };
      const file = pick(fileOption, spec.file.env);
      const inline = pick(inlineOption, spec.inline.env);
      if (file && inline) invalid(`Give it once: either ${fileName} or ${inlineName}.`);
      let text = inline;
      if (file) {
        try {
          text = readFileSync(file, 'utf8').trim();
        } catch (error) {
          invalid(`Cannot read ${file} for ${fileName}: ${messageOf(error)}`);
        }
      }
      if (text !== undefined && (text.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(text)))
        invalid(
          `${fileName} (or ${inlineName}) must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters with no spaces; make one with: openssl rand -hex 32`,
        );
      return text;
    },
  };
}

/** Admin tokens (and webhook secrets) shorter than this are refused: they would be guessable. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

function integer(min: number, max: number) {
  return (text: string, name: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      invalid(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}.`);
    return n;
  };
}

function fraction(max: number) {
  return (text: string, name: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > max)
      invalid(
        `${name} must be a fraction from 0 to ${max} (0.05 is five percent), not ${JSON.stringify(text)}.`,
      );
    return n;
  };
}

const text = (value: string) => value;
const absolute = (value: string) => resolve(value);

/** An on/off environment variable: 1 or 0, or unset for `fallback`; anything else is refused. */
function onOff(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value === '1' || value === '0') return value === '1';
  return invalid(`${name} must be 1 or 0, not ${JSON.stringify(value)}.`);
}

function commaList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function runtimeName(value: string, name: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(value))
    invalid(
      `${name} must name a loader such as onnxruntime-node or onnxruntime-wasm, not ${JSON.stringify(value)}.`,
    );
  return value;
}

/** Every setting of `hotocr serve`, in the order `--help` lists them. Adding one is adding a row. */
export const SERVE_SETTINGS = {
  port: value({
    flag: '--port <n>',
    env: 'HOTOCR_PORT',
    help: 'port to listen on; 0 picks a free one',
    fallback: '8080',
    parse: integer(0, 65535),
  }),
  host: value({
    flag: '--host <address>',
    env: 'HOTOCR_HOST',
    help: 'address to listen on',
    fallback: '0.0.0.0',
    parse: text,
  }),
  data: value({
    flag: '--data <dir>',
    env: 'HOTOCR_HOME',
    help: 'data folder: development key, bundled package, kept packages, state',
    fallback: '.hotocr',
    shown: './.hotocr',
    parse: absolute,
  }),
  model: list({
    flag: '--model <package>',
    env: 'HOTOCR_MODEL',
    help: 'serve this signed package instead of the bundled model; repeat for more models, one package each',
  }),
  defaultModel: value({
    flag: '--default-model <name>',
    env: 'HOTOCR_DEFAULT_MODEL',
    help: 'the model POST /v1/ocr and /v1/routing go to; unset: the only model with an active version',
    parse: text,
  }),
  readyAllModels: toggle({
    flag: '--ready-all-models',
    env: 'HOTOCR_READY_ALL_MODELS',
    help: 'GET /readyz answers ready only while every model can read, not just the default one',
  }),
  trust: value({
    flag: '--trust <file_or_dir>',
    env: 'HOTOCR_TRUST',
    help: 'trusted public keys, pinned root certificates, *.deny lists and *.identities (Sigstore signers of keyless OMS packages)',
    parse: text,
  }),
  models: value({
    flag: '--models <dir>',
    env: 'HOTOCR_MODELS',
    help: 'watched folder: a .zip renamed in, or written and left unchanged for --settle-ms, is verified, loaded and activated',
    parse: absolute,
  }),
  settleMs: value({
    flag: '--settle-ms <ms>',
    env: 'HOTOCR_SETTLE_MS',
    help: 'how long a written package must stay unchanged before it counts',
    fallback: '1000',
    parse: integer(0, 600_000),
  }),
  keepWarm: value({
    flag: '--keep-warm <n>',
    env: 'HOTOCR_KEEP_WARM',
    help: 'previously active versions kept loaded for an instant rollback',
    fallback: '0',
    parse: integer(0, 16),
  }),
  maxModels: value({
    flag: '--max-models <n>',
    env: 'HOTOCR_MAX_MODELS',
    help: 'model names served at once; a package of one more is refused with MODEL_LIMIT (retiring a model frees its place); unset: no limit',
    parse: integer(1, 10_000),
  }),
  loadNice: value({
    flag: '--load-nice <n>',
    env: 'HOTOCR_LOAD_NICE',
    help: 'while a version serves, verify, load and warm up new ones at this nice value, 0-19, so serving keeps the cores; needs CAP_SYS_NICE, else 0',
    fallback: '10',
    parse: integer(0, 19),
  }),
  keepThreads: toggle({
    flag: '--no-keep-threads',
    env: 'HOTOCR_KEEP_THREADS',
    help: "stop a released version's inference threads instead of keeping them for the next version, whose first pages then run slower",
  }),
  quarantine: value({
    flag: '--quarantine <dir>',
    env: 'HOTOCR_QUARANTINE',
    help: 'move refused packages from the watched folder here, with a .reason.json',
    parse: absolute,
  }),
  allowLegacySignatures: toggle({
    flag: '--allow-legacy-signatures',
    env: 'HOTOCR_ALLOW_LEGACY_SIGNATURES',
    help: 'accept seed-style packages signed over model.onnx alone',
  }),
  verifyTimeoutMs: value({
    flag: '--verify-timeout-ms <ms>',
    env: 'HOTOCR_VERIFY_TIMEOUT_MS',
    help: "time allowed to check a package's certificate chain and signature before it is refused with VERIFY_TIMEOUT",
    fallback: '2000',
    parse: integer(1, 600_000),
  }),
  adminToken: secret({
    file: {
      flag: '--admin-token-file <file>',
      env: 'HOTOCR_ADMIN_TOKEN_FILE',
      help: 'file holding the bearer token for admin calls; without a token admin calls are refused',
    },
    inline: {
      flag: '--admin-token <token>',
      env: 'HOTOCR_ADMIN_TOKEN',
      help: 'the admin bearer token itself; visible to other users in the process list, so prefer the file',
    },
  }),
  bodyLimit: value({
    flag: '--body-limit <bytes>',
    env: 'HOTOCR_BODY_LIMIT',
    help: 'largest accepted image',
    fallback: String(20 * 1024 * 1024),
    parse: integer(1024, 1024 ** 3),
  }),
  uploadLimit: value({
    flag: '--upload-limit <bytes>',
    env: 'HOTOCR_UPLOAD_LIMIT',
    help: 'largest accepted package upload',
    fallback: String(1024 ** 3),
    parse: integer(1024, 64 * 1024 ** 3),
  }),
  maxInflight: value({
    flag: '--max-inflight <n>',
    env: 'HOTOCR_MAX_INFLIGHT',
    help: 'OCR inferences running at once',
    fallback: String(availableParallelism()),
    shown: 'the number of cores',
    parse: integer(1, 1024),
  }),
  maxQueue: value({
    flag: '--max-queue <n>',
    env: 'HOTOCR_MAX_QUEUE',
    help: 'OCR requests waiting behind them; one more is answered 503 with Retry-After',
    fallback: '32',
    parse: integer(0, 100_000),
  }),
  requestTimeoutMs: value({
    flag: '--request-timeout-ms <ms>',
    env: 'HOTOCR_REQUEST_TIMEOUT_MS',
    help: 'longest an OCR request may wait and run before 503 TIMEOUT',
    fallback: '30000',
    parse: integer(100, 3_600_000),
  }),
  maxPages: value({
    flag: '--max-pages <n>',
    env: 'HOTOCR_MAX_PAGES',
    help: 'most pages of a document (PDF, multi-page TIFF) read per request; more is refused with 413 DOCUMENT_TOO_LARGE before any is rendered',
    fallback: '50',
    parse: integer(1, 10_000),
  }),
  maxPagePixels: value({
    flag: '--max-page-pixels <n>',
    env: 'HOTOCR_MAX_PAGE_PIXELS',
    help: 'most pixels of one rendered document page; a larger page is refused with 413 PAGE_TOO_LARGE before rendering',
    fallback: '36000000',
    parse: integer(10_000, 400_000_000),
  }),
  documentDpi: value({
    flag: '--document-dpi <dpi>',
    env: 'HOTOCR_DOCUMENT_DPI',
    help: 'resolution PDF pages are rendered at when a request does not say (?dpi=)',
    fallback: '150',
    parse: integer(36, 600),
  }),
  headersTimeoutMs: value({
    flag: '--headers-timeout-ms <ms>',
    env: 'HOTOCR_HEADERS_TIMEOUT_MS',
    help: 'longest a client may take to send its request headers before it is disconnected',
    fallback: '15000',
    parse: integer(100, 600_000),
  }),
  allowPinning: toggle({
    flag: '--allow-pinning',
    env: 'HOTOCR_ALLOW_PINNING',
    help: 'let clients pin a version with the X-Model-Version header',
  }),
  canaryErrorMargin: value({
    flag: '--canary-error-margin <fraction>',
    env: 'HOTOCR_CANARY_ERROR_MARGIN',
    help: "end a traffic split when a canary's error rate exceeds the active version's by more than this, e.g. 0.05; unset: not compared",
    parse: fraction(1),
  }),
  canaryP99Margin: value({
    flag: '--canary-p99-margin <fraction>',
    env: 'HOTOCR_CANARY_P99_MARGIN',
    help: "end a traffic split when a canary's p99 exceeds the active version's by more than this, e.g. 0.5 for 1.5 times; unset: not compared",
    parse: fraction(100),
  }),
  canaryMinRequests: value({
    flag: '--canary-min-requests <n>',
    env: 'HOTOCR_CANARY_MIN_REQUESTS',
    help: 'requests the canary and the active version must each answer in a split before they are compared',
    fallback: '50',
    parse: integer(1, 1_000_000),
  }),
  runtime: value({
    flag: '--runtime <name>',
    env: 'HOTOCR_RUNTIME',
    help: 'loader for packages whose config.json names no runtime: onnxruntime-node (native) or onnxruntime-wasm',
    fallback: 'onnxruntime-node',
    parse: runtimeName,
  }),
  loaders: list({
    flag: '--loader <module>',
    env: 'HOTOCR_LOADERS',
    help: 'a loader plugin (ES module path or package name), asked before the built-in loaders; repeat for more',
  }),
  registry: list({
    flag: '--registry <[name=]reference>',
    env: 'HOTOCR_REGISTRY',
    help: "follow an OCI repository for one model (REGISTRY/REPOSITORY for its highest semver tag, or REGISTRY/REPOSITORY:TAG for one tag), named NAME= or by the repository's last path segment; a package of another name is refused; repeat for more models",
  }),
  registryPollMs: value({
    flag: '--registry-poll-ms <ms>',
    env: 'HOTOCR_REGISTRY_POLL_MS',
    help: 'how often the registry is asked',
    fallback: '30000',
    parse: integer(100, 86_400_000),
  }),
  registryInsecure: list({
    flag: '--registry-insecure <host:port>',
    env: 'HOTOCR_REGISTRY_INSECURE',
    help: 'speak plain HTTP to this registry (loopback hosts always are); repeatable, added to the variable',
    both: true,
  }),
  registryTokenRealms: list({
    flag: '--registry-token-realm <host>',
    env: 'HOTOCR_REGISTRY_TOKEN_REALMS',
    help: "a token service (host or host:port) that may receive Docker's credentials besides the registry's own host, e.g. auth.docker.io; repeatable",
  }),
  registryWebhookSecret: secret({
    file: {
      flag: '--registry-webhook-secret-file <file>',
      env: 'HOTOCR_REGISTRY_WEBHOOK_SECRET_FILE',
      help: 'shared secret the registry sends as a bearer token to POST /v1/hooks/registry',
    },
    inline: { env: 'HOTOCR_REGISTRY_WEBHOOK_SECRET' },
  }),
  /** A bearer token for the registry; without one, Docker's config file is read. */
  registryToken: environment('HOTOCR_REGISTRY_TOKEN', (v) => v),
  /** Docker's config file, for registry credentials. */
  dockerConfig: environment('DOCKER_CONFIG', dockerConfigFile),
  peers: list({
    flag: '--peers <urls>',
    env: 'HOTOCR_PEERS',
    help: 'other replicas for GET /v1/fleet: base URLs, comma-separated or repeated',
    split: true,
  }),
  peersDns: value({
    flag: '--peers-dns <host:port>',
    env: 'HOTOCR_PEERS_DNS',
    help: "other replicas from a headless Service's DNS name, for GET /v1/fleet",
    parse: text,
  }),
  logLevel: value({
    flag: '--log-level <level>',
    env: 'HOTOCR_LOG_LEVEL',
    help: 'pino log level',
    fallback: 'info',
    parse: text,
  }),
  /** The allocator setting the server warns about when it is unset (docs/RELIABILITY.md). */
  mallocArenaMax: environment('MALLOC_ARENA_MAX', (v) => v),
} as const satisfies Record<string, Setting<unknown>>;

/** Everything `hotocr serve` runs with, read once: one field per row of {@link SERVE_SETTINGS}. */
export type ServeConfig = {
  readonly [K in keyof typeof SERVE_SETTINGS]: ReturnType<(typeof SERVE_SETTINGS)[K]['read']>;
};

/** What commander parsed from `hotocr serve`'s flags, by attribute name (tests pass these too). */
export type ServeFlags = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

/** The options `hotocr serve` takes, made from {@link SERVE_SETTINGS}. */
export function serveOptions(): Option[] {
  return Object.values(SERVE_SETTINGS).flatMap((s) => [...s.options]);
}

let defaults: ServeConfig | undefined;

/** Every setting at its default, for code started without the command line (tests, benches). */
export function serveDefaults(): ServeConfig {
  defaults ??= readServeConfig({}, {});
  return defaults;
}

/** Reads every setting once: flags first, then the environment, then the defaults. */
export function readServeConfig(flags: ServeFlags, env: Env = process.env): ServeConfig {
  const known = new Set(serveOptions().map(attribute));
  for (const [key, given] of Object.entries(flags))
    if (given !== undefined && !known.has(key)) invalid(`${key} is not a setting of hotocr serve.`);
  const config = Object.fromEntries(
    Object.entries(SERVE_SETTINGS).map(([key, setting]) => [key, setting.read(flags, env)]),
  ) as ServeConfig;
  if (config.model.length > 0 && !config.trust)
    invalid('--model needs --trust (HOTOCR_TRUST): the keys or roots that may sign it.');
  if (
    config.trust &&
    config.model.length === 0 &&
    !config.models &&
    !config.adminToken &&
    config.registry.length === 0
  )
    invalid(
      '--trust without --model needs a way to receive packages: --models DIR (a watched folder), --registry REGISTRY/REPOSITORY, or --admin-token-file (uploads).',
    );
  return config;
}

/**
 * The commands' own environment. Commands take each setting from its flag first, then from
 * its HOTOCR_* variable, then from the default.
 */
export interface Environment {
  /** HOTOCR_HOME: the data folder (keys, state, the bundled package). Default `./.hotocr`. */
  readonly home: string;
}

export function readEnvironment(env: Env = process.env): Environment {
  return { home: resolve(env.HOTOCR_HOME || '.hotocr') };
}

/** Docker's config file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
function dockerConfigFile(dir: string | undefined): string {
  return join(dir ?? join(homedir(), '.docker'), 'config.json');
}

/** What `hotocr push` and `pull` (and a server following a registry) speak to a registry with. */
export interface RegistryClientSettings {
  readonly insecure: readonly string[];
  readonly token?: string;
  readonly dockerConfig: string;
  readonly tokenRealms: readonly string[];
}

/**
 * Registry settings for push and pull: `--insecure` and HOTOCR_REGISTRY_INSECURE, the token,
 * Docker's config, `--token-realm` and HOTOCR_REGISTRY_TOKEN_REALMS.
 */
export function readRegistryClientSettings(
  flags: { insecure?: readonly string[]; tokenRealm?: readonly string[] },
  env: Env = process.env,
): RegistryClientSettings {
  return {
    insecure: [...(flags.insecure ?? []), ...commaList(env.HOTOCR_REGISTRY_INSECURE)],
    tokenRealms: [...(flags.tokenRealm ?? []), ...commaList(env.HOTOCR_REGISTRY_TOKEN_REALMS)],
    ...(env.HOTOCR_REGISTRY_TOKEN ? { token: env.HOTOCR_REGISTRY_TOKEN } : {}),
    dockerConfig: dockerConfigFile(env.DOCKER_CONFIG || undefined),
  };
}

/** The PKCS#11 user PIN from HOTOCR_PKCS11_PIN, when no --pkcs11-pin-file is given. */
export function readPkcs11Pin(env: Env = process.env): string | undefined {
  return env.HOTOCR_PKCS11_PIN || undefined;
}
