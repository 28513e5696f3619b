import { Command } from 'commander';
import { startServer } from '../app/index.js';
import { readServeConfig, type ServeFlags, serveOptions } from '../config.js';

export function serveCommand(): Command {
  const command = new Command('serve');
  // Every option comes from the settings table (src/config.ts), with its variable and default.
  for (const option of serveOptions()) command.addOption(option);
  return command
    .description(
      'run the OCR server; with no options it serves the bundled PP-OCRv4 model on port 8080, signed with a development key kept in the data folder',
    )
    .action(async (flags: ServeFlags) => {
      // SIGHUP reads the trust store again, as a change to the trust folder does. Listened for
      // before the server starts: a SIGHUP while it starts must not end it (the default).
      let running: Awaited<ReturnType<typeof startServer>> | undefined;
      let hupWhileStarting = false;
      process.on('SIGHUP', () => {
        if (running) void running.reloadTrust('SIGHUP');
        else hupWhileStarting = true;
      });
      const server = await startServer(readServeConfig(flags));
      running = server;
      if (hupWhileStarting) void server.reloadTrust('SIGHUP');
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
