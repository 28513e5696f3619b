import { Command } from 'commander';
import { HotocrError, isRejection } from '../errors.js';
import { type SignerInfo, shortFingerprint, TrustStore, verifyPackage } from '../verify/index.js';
import { EXIT } from './output.js';

export function describeSigner(signer: SignerInfo): string {
  return signer.kind === 'key'
    ? `key ${shortFingerprint(signer.fingerprint)} (${signer.source}, ${signer.algorithm}${signer.notAfter ? `, trusted until ${signer.notAfter}` : ''})`
    : `certificate "${signer.subject}" ${shortFingerprint(signer.fingerprint)} under root "${signer.root}" (${signer.algorithm})`;
}

export function verifyCommand(): Command {
  return new Command('verify')
    .description(
      'run every check of a package but loading; exit 0 when valid, 1 when invalid (printing CODE: sentence), 2 on usage errors',
    )
    .argument('<package>', 'the package (.zip)')
    .requiredOption(
      '--trust <file_or_dir>',
      'trusted public keys and/or pinned root certificates (PEM file or folder)',
    )
    .option('--json', 'print {ok, code, message, name, version, sha256, signer} on stdout', false)
    .option(
      '--allow-legacy-signatures',
      'accept seed-style packages whose signature covers model.onnx alone',
      false,
    )
    .action(async (path: string, opts: { trust: string; json: boolean; allowLegacySignatures: boolean }) => {
      const trust = await TrustStore.load(opts.trust);
      try {
        const pkg = await verifyPackage(path, { trust, allowLegacySignatures: opts.allowLegacySignatures });
        if (pkg.legacy) {
          process.stderr.write(
            `warning: legacy signature: the signature covers model.onnx only; unprotected: ${pkg.legacy.unprotected.join(', ') || '(none)'}\n`,
          );
        }
        if (opts.json) {
          const out = {
            ok: true,
            code: null,
            message: 'verified',
            name: pkg.manifest.name,
            version: pkg.manifest.version,
            sha256: pkg.sha256,
            signer: pkg.signer,
            ...(pkg.legacy ? { legacy: pkg.legacy } : {}),
          };
          process.stdout.write(`${JSON.stringify(out)}\n`);
        } else {
          process.stdout.write(
            `OK: ${pkg.manifest.name} ${pkg.manifest.version} (sha256 ${pkg.sha256}) signed by ${describeSigner(pkg.signer)}\n`,
          );
        }
      } catch (error) {
        if (!isRejection(error) && !(error instanceof HotocrError)) throw error;
        if (opts.json) {
          const sha256 = typeof error.details.sha256 === 'string' ? error.details.sha256 : null;
          const out = {
            ok: false,
            code: error.code,
            message: error.message,
            name: null,
            version: null,
            sha256,
            signer: null,
          };
          process.stdout.write(`${JSON.stringify(out)}\n`);
        } else {
          process.stdout.write(`${error.code}: ${error.message}\n`);
        }
        process.exitCode = EXIT.invalid;
      }
    });
}
