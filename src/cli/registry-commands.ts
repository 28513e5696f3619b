import { basename, resolve } from 'node:path';
import { Command } from 'commander';
import { readRegistryClientSettings } from '../config.js';
import { OciClient, parseReference } from '../oci/index.js';
import { MANIFEST_FILE, PackageArchive, parseManifest } from '../package/index.js';

interface RegistryFlags {
  insecure?: string[];
  tokenRealm?: string[];
}

const repeat = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const insecureOption = [
  '--insecure <host:port>',
  'speak plain HTTP to this registry (loopback hosts always are); repeatable (HOTOCR_REGISTRY_INSECURE, comma-separated)',
  repeat,
] as const;

const tokenRealmOption = [
  '--token-realm <host>',
  "a token service (host or host:port) that may receive Docker's credentials besides the registry's own host, e.g. auth.docker.io; repeatable (HOTOCR_REGISTRY_TOKEN_REALMS, comma-separated)",
  repeat,
] as const;

export function pushCommand(): Command {
  return new Command('push')
    .description(
      "store a package in an OCI registry as an artifact (one layer of type application/vnd.hotocr.package.v1+zip) and print its digest; credentials from Docker's config file or HOTOCR_REGISTRY_TOKEN",
    )
    .argument('<package>', 'the package (.zip); it is not verified here, replicas verify what they pull')
    .argument('<reference>', 'REGISTRY/REPOSITORY:TAG, e.g. localhost:5000/models/ppocr:4.1.0')
    .option(...insecureOption)
    .option(...tokenRealmOption)
    .action(async (path: string, reference: string, flags: RegistryFlags) => {
      const ref = parseReference(reference);
      const archive = await PackageArchive.open(path);
      let manifest: ReturnType<typeof parseManifest>;
      try {
        manifest = parseManifest(await archive.readSmall(MANIFEST_FILE));
      } finally {
        await archive.close();
      }
      const client = new OciClient(readRegistryClientSettings(flags));
      const { digest, size } = await client.push(resolve(path), ref, {
        name: manifest.name,
        version: manifest.version,
        file: basename(path),
      });
      process.stderr.write(`pushed ${manifest.name} ${manifest.version} (${size} bytes) to ${reference}\n`);
      process.stdout.write(`${digest}\n`);
    });
}

export function pullCommand(): Command {
  return new Command('pull')
    .description('fetch the package an artifact holds, checked against its digest (verify it before use)')
    .argument('<reference>', 'REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:DIGEST')
    .requiredOption('--out <file>', 'where to write the package')
    .option('--max-bytes <n>', 'largest package accepted (default 1073741824)', '1073741824')
    .option(...insecureOption)
    .option(...tokenRealmOption)
    .action(async (reference: string, flags: RegistryFlags & { out: string; maxBytes: string }) => {
      const client = new OciClient(readRegistryClientSettings(flags));
      const { digest } = await client.pull(parseReference(reference), flags.out, Number(flags.maxBytes));
      process.stdout.write(`${digest}\n`);
    });
}
