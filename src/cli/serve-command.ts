import { Command } from 'commander';
import { readServeConfig, type ServeFlags } from '../config.js';
import { startServer } from '../server/index.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'run the OCR server; with no options it serves the bundled PP-OCRv4 model on port 8080, signed with a development key kept in the data folder',
    )
    .option('--port <n>', 'port to listen on (HOTOCR_PORT, default 8080; 0 picks a free one)')
    .option('--host <address>', 'address to listen on (HOTOCR_HOST, default 0.0.0.0)')
    .option('--data <dir>', 'data folder: development key, bundled package (HOTOCR_HOME, default ./.hotocr)')
    .option('--model <package>', 'serve this signed package instead of the bundled model (HOTOCR_MODEL)')
    .option('--trust <file_or_dir>', 'trusted public keys or pinned root certificates (HOTOCR_TRUST)')
    .option(
      '--models <dir>',
      'watched folder: a .zip renamed in, or written and left unchanged for --settle-ms, is verified, loaded and activated (HOTOCR_MODELS)',
    )
    .option(
      '--settle-ms <ms>',
      'how long a written package must stay unchanged before it counts (HOTOCR_SETTLE_MS, default 1000)',
    )
    .option(
      '--keep-warm <n>',
      'previously active versions kept loaded for an instant rollback (HOTOCR_KEEP_WARM, default 0)',
    )
    .option(
      '--load-nice <n>',
      'while a version serves, verify, load and warm up new ones at this nice value, 0-19, so serving keeps the cores; needs CAP_SYS_NICE, else 0 (HOTOCR_LOAD_NICE, default 10)',
    )
    .option(
      '--no-keep-threads',
      "stop a released version's inference threads instead of keeping them for the next version, whose first pages then run slower (HOTOCR_KEEP_THREADS=0)",
    )
    .option(
      '--quarantine <dir>',
      'move refused packages from the watched folder here, with a .reason.json (HOTOCR_QUARANTINE)',
    )
    .option(
      '--allow-legacy-signatures',
      'accept seed-style packages signed over model.onnx alone (HOTOCR_ALLOW_LEGACY_SIGNATURES=1)',
    )
    .option(
      '--verify-timeout-ms <ms>',
      "time allowed to check a package's certificate chain and signature before it is refused with VERIFY_TIMEOUT (HOTOCR_VERIFY_TIMEOUT_MS, default 2000)",
    )
    .option(
      '--admin-token-file <file>',
      'file holding the bearer token for admin calls (HOTOCR_ADMIN_TOKEN_FILE); without a token admin calls are refused',
    )
    .option(
      '--admin-token <token>',
      'the admin bearer token itself (HOTOCR_ADMIN_TOKEN); visible to other users in the process list, so prefer the file',
    )
    .option('--body-limit <bytes>', 'largest accepted image (HOTOCR_BODY_LIMIT, default 20971520)')
    .option(
      '--upload-limit <bytes>',
      'largest accepted package upload (HOTOCR_UPLOAD_LIMIT, default 1073741824)',
    )
    .option(
      '--max-inflight <n>',
      'OCR inferences running at once (HOTOCR_MAX_INFLIGHT, default: the number of cores)',
    )
    .option(
      '--max-queue <n>',
      'OCR requests waiting behind them; one more is answered 503 with Retry-After (HOTOCR_MAX_QUEUE, default 32)',
    )
    .option(
      '--request-timeout-ms <ms>',
      'longest an OCR request may wait and run before 503 TIMEOUT (HOTOCR_REQUEST_TIMEOUT_MS, default 30000)',
    )
    .option(
      '--headers-timeout-ms <ms>',
      'longest a client may take to send its request headers before it is disconnected (HOTOCR_HEADERS_TIMEOUT_MS, default 15000)',
    )
    .option(
      '--allow-pinning',
      'let clients pin a version with the X-Model-Version header (HOTOCR_ALLOW_PINNING=1)',
    )
    .option(
      '--canary-error-margin <fraction>',
      "end a traffic split when a canary's error rate exceeds the active version's by more than this, e.g. 0.05 (HOTOCR_CANARY_ERROR_MARGIN; unset: not compared)",
    )
    .option(
      '--canary-p99-margin <fraction>',
      "end a traffic split when a canary's p99 exceeds the active version's by more than this, e.g. 0.5 for 1.5 times (HOTOCR_CANARY_P99_MARGIN; unset: not compared)",
    )
    .option(
      '--canary-min-requests <n>',
      'requests the canary and the active version must each answer in a split before they are compared (HOTOCR_CANARY_MIN_REQUESTS, default 50)',
    )
    .option(
      '--runtime <name>',
      'loader for packages whose config.json names no runtime: onnxruntime-node (native) or onnxruntime-wasm (HOTOCR_RUNTIME, default onnxruntime-node)',
    )
    .option(
      '--loader <module>',
      'a loader plugin (ES module path or package name), asked before the built-in loaders; repeat for more (HOTOCR_LOADERS, comma-separated)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '--registry <reference>',
      'follow an OCI repository (REGISTRY/REPOSITORY for its highest semver tag, or REGISTRY/REPOSITORY:TAG for one tag); what it pulls is verified like a dropped file (HOTOCR_REGISTRY)',
    )
    .option(
      '--registry-poll-ms <ms>',
      'how often the registry is asked (HOTOCR_REGISTRY_POLL_MS, default 30000)',
    )
    .option(
      '--registry-insecure <host:port>',
      'speak plain HTTP to this registry (loopback hosts always are); repeatable (HOTOCR_REGISTRY_INSECURE, comma-separated)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option(
      '--registry-webhook-secret-file <file>',
      'shared secret the registry sends as a bearer token to POST /v1/hooks/registry (HOTOCR_REGISTRY_WEBHOOK_SECRET_FILE, or HOTOCR_REGISTRY_WEBHOOK_SECRET)',
    )
    .option('--peers <urls>', 'other replicas for GET /v1/fleet, comma-separated base URLs (HOTOCR_PEERS)')
    .option(
      '--peers-dns <host:port>',
      "other replicas from a headless Service's DNS name, for GET /v1/fleet (HOTOCR_PEERS_DNS)",
    )
    .option('--log-level <level>', 'pino log level (HOTOCR_LOG_LEVEL, default info)')
    .action(async (flags: ServeFlags) => {
      const server = await startServer(readServeConfig(flags));
      const stop = (signal: string) => {
        server.app.log.info({ signal }, 'stopping: finishing in-flight requests');
        server.close().then(
          () => process.exit(0),
          (error: unknown) => {
            server.app.log.error({ err: error }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
