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
      '--quarantine <dir>',
      'move refused packages from the watched folder here, with a .reason.json (HOTOCR_QUARANTINE)',
    )
    .option(
      '--allow-legacy-signatures',
      'accept seed-style packages signed over model.onnx alone (HOTOCR_ALLOW_LEGACY_SIGNATURES=1)',
    )
    .option('--body-limit <bytes>', 'largest accepted request body (HOTOCR_BODY_LIMIT, default 20971520)')
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
