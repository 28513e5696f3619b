import { createHash, X509Certificate } from 'node:crypto';
import { Command } from 'commander';
import { HotocrError } from '../errors.js';
import {
  CHECKSUM_FILE,
  MANIFEST_FILE,
  type Manifest,
  OMS_SIGNATURE_FILE,
  PackageArchive,
  parseChecksumFile,
  parseManifest,
  SIGNATURE_FILE,
  SIGNER_FILE,
} from '../package/index.js';
import { hashFile, parseOmsBundle, parseOmsStatement, parsePem } from '../verify/index.js';
import { formatBytes } from './output.js';

interface Inspection {
  path: string;
  sha256: string;
  size: number;
  verified: false;
  manifest: Manifest | null;
  manifestError: string | null;
  entries: {
    name: string;
    size: number;
    method: string;
    sha256: string;
    listed: string | null;
    matches: boolean | null;
  }[];
  checksumError: string | null;
  signatureBytes: number | null;
  /** For a ZIP signed with OpenSSF Model Signing: how model.sig says it is signed, and the model digest (not checked). */
  oms: { material: 'key' | 'certificate' | 'keyless'; keyHint: string | null; modelDigest: string } | null;
  signerCertificates: {
    subject: string;
    issuer: string;
    notBefore: string;
    notAfter: string;
    fingerprint: string;
  }[];
}

async function inspect(path: string): Promise<Inspection> {
  const archive = await PackageArchive.open(path);
  try {
    let listed: ReadonlyMap<string, string> = new Map<string, string>();
    let checksumError: string | null = null;
    let oms: Inspection['oms'] = null;
    const describe = (e: unknown) => (e instanceof HotocrError ? `${e.code}: ${e.message}` : String(e));
    // Signed with OpenSSF Model Signing: the entries are listed by model.sig's statement.
    if (archive.has(OMS_SIGNATURE_FILE) && !archive.has(CHECKSUM_FILE) && !archive.has(SIGNATURE_FILE)) {
      try {
        const bundle = parseOmsBundle(await archive.readSmall(OMS_SIGNATURE_FILE));
        const statement = parseOmsStatement(bundle.payload);
        listed = statement.resources;
        oms = {
          material: bundle.material.kind,
          keyHint: bundle.material.kind === 'key' ? (bundle.material.hint ?? null) : null,
          modelDigest: statement.digest,
        };
      } catch (e) {
        checksumError = describe(e);
      }
    } else if (archive.has(CHECKSUM_FILE)) {
      try {
        listed = parseChecksumFile(await archive.readSmall(CHECKSUM_FILE));
      } catch (e) {
        checksumError = describe(e);
      }
    } else checksumError = `no ${CHECKSUM_FILE}`;
    const entries: Inspection['entries'] = [];
    for (const entry of archive.entries) {
      const hash = createHash('sha256');
      for await (const chunk of await archive.openStream(entry.name)) hash.update(chunk as Buffer);
      const sha256 = hash.digest('hex');
      const expected = listed.get(entry.name) ?? null;
      entries.push({
        name: entry.name,
        size: entry.uncompressedSize,
        method: entry.method,
        sha256,
        listed: expected,
        matches: expected === null ? null : expected === sha256,
      });
    }
    let manifest: Manifest | null = null;
    let manifestError: string | null = null;
    if (archive.has(MANIFEST_FILE)) {
      try {
        manifest = parseManifest(await archive.readSmall(MANIFEST_FILE));
      } catch (e) {
        manifestError = e instanceof HotocrError ? `${e.code}: ${e.message}` : String(e);
      }
    } else manifestError = `no ${MANIFEST_FILE}`;
    const signerCertificates = archive.has(SIGNER_FILE)
      ? parsePem((await archive.readSmall(SIGNER_FILE)).toString('utf8'))
          .filter((b) => b.type === 'CERTIFICATE')
          .map((b) => {
            const c = new X509Certificate(b.der);
            return {
              // Node gives undefined for an empty name.
              subject: (c.subject ?? '').replace(/\n/g, ', '),
              issuer: (c.issuer ?? '').replace(/\n/g, ', '),
              notBefore: new Date(c.validFrom).toISOString(),
              notAfter: new Date(c.validTo).toISOString(),
              fingerprint: c.fingerprint256.replace(/:/g, '').toLowerCase(),
            };
          })
      : [];
    const signatureBytes = archive.has(SIGNATURE_FILE)
      ? (archive.entry(SIGNATURE_FILE)?.uncompressedSize ?? null)
      : null;
    return {
      path,
      sha256: await hashFile(path),
      size: archive.size,
      verified: false,
      manifest,
      manifestError,
      entries,
      checksumError,
      signatureBytes,
      oms,
      signerCertificates,
    };
  } finally {
    await archive.close();
  }
}

function printText(r: Inspection): void {
  const out: string[] = [];
  out.push(`package  ${r.path} (${formatBytes(r.size)})`, `sha256   ${r.sha256}`);
  out.push('status   NOT VERIFIED (inspect reads; run `hotocr verify --trust ...` to check the signature)');
  if (r.manifest) {
    const m = r.manifest;
    out.push(`model    ${m.name} ${m.version} (task ${m.task}, runtime ${m.runtime ?? 'onnxruntime-node'})`);
    if (m.created) out.push(`created  ${m.created}`);
    if (m.expires) out.push(`expires  ${m.expires}`);
  } else out.push(`manifest ${r.manifestError}`);
  out.push('entries');
  for (const e of r.entries) {
    const mark =
      r.oms && e.name === OMS_SIGNATURE_FILE
        ? '(the signature)'
        : e.matches === null
          ? '(not listed)'
          : e.matches
            ? 'ok'
            : 'MISMATCH';
    out.push(
      `  ${e.name.padEnd(20)} ${formatBytes(e.size).padStart(10)} ${e.method.padEnd(8)} ${e.sha256.slice(0, 16)}  ${mark}`,
    );
  }
  if (r.checksumError) out.push(`checksum ${r.checksumError}`);
  if (r.oms) {
    const by =
      r.oms.material === 'key'
        ? `by key${r.oms.keyHint ? ` ${r.oms.keyHint.slice(0, 16)}...` : ''}`
        : r.oms.material === 'certificate'
          ? 'by a certificate chain'
          : 'keyless, Sigstore';
    out.push(
      `signature ${OMS_SIGNATURE_FILE} (OpenSSF Model Signing, ${by}), model digest ${r.oms.modelDigest}`,
    );
  } else out.push(`signature ${r.signatureBytes === null ? 'none' : `${r.signatureBytes} bytes`}`);
  for (const c of r.signerCertificates)
    out.push(`signer   ${c.subject} (issuer ${c.issuer}, valid ${c.notBefore} to ${c.notAfter})`);
  process.stdout.write(`${out.join('\n')}\n`);
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description(
      "show a package: manifest, entries and their hashes against checksum.sha256 (or model.sig's statement), signer certificate (reads only; does not verify)",
    )
    .argument('<package>', 'the package (.zip)')
    .option('--json', 'print the inspection as JSON', false)
    .action(async (path: string, opts: { json: boolean }) => {
      const result = await inspect(path);
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else printText(result);
    });
}
