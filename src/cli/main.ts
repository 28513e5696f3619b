#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { HotocrError } from '../errors.js';
import { VERSION } from '../version.js';
import { inspectCommand } from './inspect-command.js';
import { keygenCommand } from './keygen-command.js';
import { ocrCommand } from './ocr-command.js';
import { EXIT, printError } from './output.js';
import { packCommand } from './pack-command.js';
import { pullCommand, pushCommand } from './registry-commands.js';
import { serveCommand } from './serve-command.js';
import { verifyCommand } from './verify-command.js';

const program = new Command('hotocr')
  .description(
    'hotocr: an OCR server whose signed model packages are verified and hot-swapped while it serves',
  )
  .version(VERSION)
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

for (const command of [
  serveCommand(),
  keygenCommand(),
  packCommand(),
  verifyCommand(),
  inspectCommand(),
  ocrCommand(),
  pushCommand(),
  pullCommand(),
]) {
  program.addCommand(command.exitOverride());
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    printError(error);
    process.exitCode =
      error instanceof HotocrError && error.code !== 'TRUST_STORE_INVALID' && error.code !== 'USAGE'
        ? EXIT.invalid
        : EXIT.usage;
  }
}
