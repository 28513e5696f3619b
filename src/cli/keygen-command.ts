import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { type KeyType, keygen } from '../pack/index.js';
import { keyFingerprint, shortFingerprint } from '../verify/index.js';

export function keygenCommand(): Command {
  return new Command('keygen')
    .description(
      'create a signing key pair: DIR/signing.key (private, mode 0600) and DIR/signing.pub (public, for --trust)',
    )
    .addOption(
      new Option('--type <type>', 'key type').choices(['rsa', 'ecdsa', 'ed25519']).makeOptionMandatory(),
    )
    .requiredOption('--out <dir>', 'folder to write the key pair into')
    .addOption(new Option('--curve <curve>', 'ECDSA curve').choices(['P-256', 'P-384']).default('P-256'))
    .option('--bits <n>', 'RSA modulus size', (v) => Number.parseInt(v, 10), 3072)
    .option('--force', 'replace an existing key pair', false)
    .action(
      async (opts: {
        type: KeyType;
        out: string;
        curve: 'P-256' | 'P-384';
        bits: number;
        force: boolean;
      }) => {
        const result = await keygen(opts);
        const fp = keyFingerprint(createPublicKey(await readFile(result.publicKeyPath)));
        process.stdout.write(
          `private key: ${result.privateKeyPath}\npublic key:  ${result.publicKeyPath}\nfingerprint: ${shortFingerprint(fp)}\n`,
        );
      },
    );
}
