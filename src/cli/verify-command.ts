import { Command } from 'commander';
import { HotocrError, isRejection } from '../errors.js';
import {
  loadSigstoreTrustedRoot,
  type OmsSigner,
  omsFormOf,
  type SignerInfo,
  shortFingerprint,
  TrustStore,
  type VerifiedOmsModel,
  verifyOmsModel,
  verifyPackage,
} from '../verify/index.js';
import { EXIT } from './output.js';

export function describeSigner(signer: SignerInfo): string {
  switch (signer.kind) {
    case 'key':
    case 'oms-key':
      return `key ${shortFingerprint(signer.fingerprint)} (${signer.source}, ${signer.algorithm}${signer.notAfter ? `, trusted until ${signer.notAfter}` : ''})`;
    case 'certificate':
    case 'oms-certificate':
      return `certificate "${signer.subject}" ${shortFingerprint(signer.fingerprint)} under root "${signer.root}" (${signer.algorithm})`;
    case 'oms-sigstore':
      return `${signer.identity} (issuer ${signer.issuer}${signer.trustedAs ? `, trusted by ${signer.trustedAs}` : ''}), keyless: certificate ${shortFingerprint(signer.fingerprint)}, logged ${signer.integratedTime} at index ${signer.logIndex} (${signer.trustedRoot})`;
  }
}

function describeOmsSigner(signer: OmsSigner): string {
  return signer.kind === 'keyless'
    ? describeSigner({ ...signer, kind: 'oms-sigstore' })
    : describeSigner(signer);
}

interface VerifyFlags {
  trust?: string;
  signature?: string;
  identity?: string;
  issuer?: string;
  trustedRoot?: string;
  ignorePaths: string[];
  ignoreGitPaths: boolean;
  json: boolean;
  allowLegacySignatures: boolean;
}

const OMS_ONLY = ['signature', 'identity', 'issuer', 'trustedRoot'] as const;
const FLAG: Record<(typeof OMS_ONLY)[number], string> = {
  signature: '--signature',
  identity: '--identity',
  issuer: '--issuer',
  trustedRoot: '--trusted-root',
};

function usage(message: string): never {
  throw new HotocrError('USAGE', message);
}

export function verifyCommand(): Command {
  return new Command('verify')
    .description(
      'run every check of a hotocr package, or of a model signed with OpenSSF Model Signing (model.sig), but loading; exit 0 when valid, 1 when invalid (printing CODE: sentence), 2 on usage errors',
    )
    .argument(
      '<path>',
      'a package (.zip); or an OMS-signed model: a folder holding model.sig, a single file with --signature, or a ZIP carrying model.sig',
    )
    .option(
      '--trust <file_or_dir>',
      'trusted public keys and/or pinned root certificates (PEM file or folder), and *.identities (IDENTITY ISSUER lines) trusted for a keyless OMS signature when --identity is not given',
    )
    .option('--signature <file>', 'OMS: the signature (model.sig) of PATH, a single file or a folder')
    .option(
      '--identity <email_or_uri>',
      "OMS keyless (Sigstore): the signing certificate's subject alternative name, matched exactly",
    )
    .option('--issuer <url>', 'OMS keyless: the OIDC issuer that vouched for --identity, matched exactly')
    .option(
      '--trusted-root <file>',
      'OMS keyless: a Sigstore trusted_root.json instead of the embedded public-good one',
    )
    .option(
      '--ignore-paths <path>',
      'OMS: leave this file or folder out of the check (repeatable; a path inside the model)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--no-ignore-git-paths', 'OMS folders: check .git, .gitattributes, .github and .gitignore too')
    .option('--json', 'print {ok, code, message, name, version, sha256, signer} on stdout', false)
    .option(
      '--allow-legacy-signatures',
      'accept seed-style packages whose signature covers model.onnx alone',
      false,
    )
    .action(async (path: string, opts: VerifyFlags) => {
      if ((opts.identity === undefined) !== (opts.issuer === undefined))
        usage(
          '--identity and --issuer go together: a keyless signature is trusted for an identity from one issuer.',
        );
      if (opts.trust === undefined && opts.identity === undefined)
        usage(
          'Say whom to trust: --trust FILE_OR_DIR (keys, root certificates), or --identity and --issuer (keyless).',
        );
      const trust = opts.trust === undefined ? undefined : await TrustStore.load(opts.trust);
      const form = await omsFormOf(path, opts.signature);
      if (!form) {
        const misplaced = OMS_ONLY.filter((k) => opts[k] !== undefined).map((k) => FLAG[k]);
        if (opts.ignorePaths.length > 0) misplaced.push('--ignore-paths');
        if (misplaced.length > 0)
          usage(
            `${misplaced.join(', ')} apply to OMS-signed models (a folder holding model.sig, a file with --signature, a ZIP carrying model.sig); ${path} is none of these, so it is verified as a hotocr package.`,
          );
        if (!trust)
          usage(
            `${path} is verified as a hotocr package (not an OMS-signed model): give --trust FILE_OR_DIR.`,
          );
      }
      try {
        if (form) {
          const model = await verifyOmsModel(path, form, {
            ...(trust ? { trust } : {}),
            ...(opts.identity !== undefined && opts.issuer !== undefined
              ? {
                  keyless: { identity: opts.identity, issuer: opts.issuer },
                  trustedRoot: await loadSigstoreTrustedRoot(opts.trustedRoot),
                }
              : {}),
            ...(opts.signature !== undefined ? { signature: opts.signature } : {}),
            ignorePaths: opts.ignorePaths,
            ignoreGitPaths: opts.ignoreGitPaths,
          });
          printOms(model, opts.json);
          return;
        }
        const pkg = await verifyPackage(path, {
          trust: trust!,
          allowLegacySignatures: opts.allowLegacySignatures,
        });
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
        if (!isRejection(error) && (error.code === 'USAGE' || error.code === 'TRUST_STORE_INVALID'))
          throw error;
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
            ...(form ? { format: 'oms' } : {}),
          };
          process.stdout.write(`${JSON.stringify(out)}\n`);
        } else {
          process.stdout.write(`${error.code}: ${error.message}\n`);
        }
        process.exitCode = EXIT.invalid;
      }
    });
}

/** An OMS model that verified: what it is, who signed it, what was checked and what was left out. */
function printOms(model: VerifiedOmsModel, json: boolean): void {
  if (json) {
    const out = {
      ok: true,
      code: null,
      message: 'verified',
      name: model.manifest?.name ?? model.name,
      version: model.manifest?.version ?? null,
      sha256: model.sha256,
      signer: model.signer,
      format: 'oms',
      flavour: model.flavour,
      form: model.form,
      digest: model.digest,
      files: model.files,
      ignored: model.ignored,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const what = model.manifest ? `${model.manifest.name} ${model.manifest.version}` : model.name;
  process.stdout.write(
    `OK: ${what} (OMS ${model.flavour}, ${model.files.length} file(s), digest ${model.digest}) signed by ${describeOmsSigner(model.signer)}\n`,
  );
  if (model.ignored.length > 0)
    process.stdout.write(`not covered by the signature (ignored): ${model.ignored.join(', ')}\n`);
}
