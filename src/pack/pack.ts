import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import { HotocrError, messageOf, PackError } from '../errors.js';
import {
  CHECKSUM_FILE,
  formatChecksumFile,
  MANIFEST_FILE,
  type Manifest,
  OMS_SIGNATURE_FILE,
  parseManifest,
  referencedFiles,
  SIGNATURE_FILE,
  SIGNER_FILE,
  UNLISTED_ENTRIES,
} from '../package/index.js';
import {
  checkSignerChain,
  keyFingerprint,
  parsePem,
  TrustStore,
  type VerifiedPackage,
  verifyPackage,
} from '../verify/index.js';
import { OMS_IGNORE_PATHS, omsBundle, omsSchemeOf, omsStatement } from './oms-sign.js';
import type { PackageSigner } from './signer.js';

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** A fixed entry time makes packages of the same files differ only by their signature. */
const ENTRY_TIME = new Date('2000-01-01T00:00:00Z');
/** Graphs are float weights: deflate gains little and costs every verification. */
const STORE = /\.(onnx|ort|bin)$/i;

export interface PackProgress {
  readonly file: string;
  readonly done: number;
  readonly total: number;
}

/** What a package is signed as: hotocr's checksum.sha256 and signature.sig, or OpenSSF Model Signing's model.sig. */
export type PackFormat = 'hotocr' | 'oms';

export interface PackOptions {
  readonly signer: PackageSigner;
  readonly out: string;
  /** Default `hotocr`. */
  readonly format?: PackFormat;
  /**
   * PEM: the signer certificate, then any intermediates; stored as signer.pem, or with
   * `format: 'oms'` as the bundle's x509CertificateChain (the reference's certificate method).
   */
  readonly certificateChain?: Buffer;
  readonly onProgress?: (progress: PackProgress) => void;
}

export interface PackResult {
  readonly path: string;
  readonly manifest: Manifest;
  /** SHA-256 of the package file: its identity on a server. */
  readonly sha256: string;
  readonly files: readonly { name: string; size: number; sha256: string }[];
  /** How it was signed: the scheme and, for OMS, the statement's subject digest (the model's). */
  readonly signature:
    | { readonly format: 'hotocr'; readonly algorithm: string }
    | { readonly format: 'oms'; readonly algorithm: string; readonly modelDigest: string };
}

async function hashWithProgress(
  path: string,
  name: string,
  size: number,
  onProgress?: (p: PackProgress) => void,
) {
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    onProgress?.({ file: name, done, total: size });
  }
  return hash.digest('hex');
}

/**
 * Builds and signs a package from the files of `srcDir` (flat), as a `hotocr/v1` package or,
 * with `format: 'oms'`, as a ZIP signed with OpenSSF Model Signing (`model.sig`) as the
 * reference's key method signs. Signature files already in `srcDir` (checksum.sha256,
 * signature.sig and signer.pem; for OMS also model.sig and the git paths) are ignored and made
 * again. The package is written
 * under a temporary name, verified with the signer's own public key, then renamed into place:
 * a failed pack leaves no file behind.
 */
export async function pack(srcDir: string, options: PackOptions): Promise<PackResult> {
  const oms = options.format === 'oms';
  // Refused before anything is read: a key OMS does not sign with makes no package.
  const scheme = oms ? omsSchemeOf(options.signer) : options.signer.algorithm;
  // The signature files of the format being written are made again, as are the paths the
  // reference leaves out of an OMS statement (model.sig among them).
  const skipped = new Set<string>([...UNLISTED_ENTRIES, ...(oms ? OMS_IGNORE_PATHS : [])]);
  const names = (await readdir(srcDir)).filter((n) => !skipped.has(n)).sort();
  const files: { name: string; path: string; size: number; sha256: string }[] = [];
  for (const name of names) {
    const path = join(srcDir, name);
    const info = await lstat(path);
    if (!info.isFile()) {
      throw new PackError(
        'PACK_SOURCE_INVALID',
        `${path} is not a regular file; a package is flat and holds regular files only.`,
      );
    }
    if (!SAFE_NAME.test(name)) {
      throw new PackError(
        'PACK_SOURCE_INVALID',
        `${JSON.stringify(name)} is not a valid entry name ([A-Za-z0-9._-], not starting with "." or "-").`,
      );
    }
    files.push({ name, path, size: info.size, sha256: '' });
  }
  if (!names.includes(MANIFEST_FILE))
    throw new PackError('PACK_SOURCE_INVALID', `${srcDir} has no ${MANIFEST_FILE}.`);
  let manifest: Manifest;
  try {
    manifest = parseManifest(await readFile(join(srcDir, MANIFEST_FILE)));
  } catch (cause) {
    if (cause instanceof HotocrError) throw new PackError(cause.code, cause.message, { cause });
    throw cause;
  }
  for (const name of referencedFiles(manifest)) {
    if (!names.includes(name))
      throw new PackError(
        'CONFIG_INVALID',
        `${MANIFEST_FILE} names ${JSON.stringify(name)}, which is not in ${srcDir}.`,
      );
  }
  // Before anything is hashed, signed or written: a chain verify would refuse makes no package.
  if (options.certificateChain) checkCertificateChain(options.certificateChain, options.signer);
  for (const file of files)
    file.sha256 = await hashWithProgress(file.path, file.name, file.size, options.onProgress);

  const signed: { name: string; bytes: Buffer }[] = [];
  let modelDigest = '';
  if (oms) {
    const statement = omsStatement(
      basename(resolve(srcDir)),
      files.map((f) => ({ name: f.name, sha256: f.sha256 })),
    );
    modelDigest = statement.digest;
    const chain = options.certificateChain ? certificatesOf(options.certificateChain) : undefined;
    signed.push({
      name: OMS_SIGNATURE_FILE,
      bytes: await omsBundle(statement.bytes, options.signer, chain),
    });
  } else {
    const checksum = formatChecksumFile(files.map((f) => [f.name, f.sha256] as const));
    signed.push({ name: CHECKSUM_FILE, bytes: checksum });
    signed.push({ name: SIGNATURE_FILE, bytes: await options.signer.sign(checksum) });
    if (options.certificateChain) signed.push({ name: SIGNER_FILE, bytes: options.certificateChain });
  }

  const tmp = join(dirname(options.out), `.${basename(options.out)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const zip = new yazl.ZipFile();
    const entryOptions = { mtime: ENTRY_TIME, mode: 0o100644 };
    for (const file of files)
      zip.addFile(file.path, file.name, { ...entryOptions, compress: !STORE.test(file.name) });
    for (const entry of signed) zip.addBuffer(entry.bytes, entry.name, { ...entryOptions, compress: false });
    zip.end();
    await pipeline(zip.outputStream, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    const verified = await selfVerify(tmp, options);
    await rename(tmp, options.out);
    return {
      path: options.out,
      manifest,
      sha256: verified.sha256,
      files: files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      signature: oms
        ? { format: 'oms', algorithm: scheme, modelDigest }
        : { format: 'hotocr', algorithm: scheme },
    };
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Applies every rule of `signer.pem` that needs no pinned root (order, links, algorithms,
 * dates, usages), then checks that the first certificate is the signing key's.
 */
function checkCertificateChain(chain: Buffer, signer: PackageSigner): void {
  let leaf: { subject: string; keyFingerprint: string };
  try {
    leaf = checkSignerChain(chain, { now: new Date() })[0]!;
  } catch (cause) {
    if (!(cause instanceof HotocrError)) throw cause;
    throw new PackError(
      'CERT_INVALID',
      `hotocr verify would refuse this certificate chain: ${cause.message}`,
      {
        cause,
        details: { ...cause.details, refusal: cause.code },
      },
    );
  }
  if (leaf.keyFingerprint !== keyFingerprint(signer.publicKey)) {
    throw new PackError(
      'CERT_INVALID',
      `The first certificate (${leaf.subject}) is not for the signing key; put the signer's certificate first.`,
    );
  }
}

/** The DER of each certificate of a PEM chain, in order. */
function certificatesOf(pem: Buffer): Buffer[] {
  return parsePem(pem.toString('utf8'))
    .filter((b) => b.type === 'CERTIFICATE')
    .map((b) => b.der);
}

/**
 * Verifies the package just written with the signer's public key. A store without roots checks
 * a package that carries a chain (signer.pem, or an OMS bundle's) by key: whether the chain is
 * acceptable is the verifier's policy, not the packer's.
 */
async function selfVerify(path: string, options: PackOptions): Promise<VerifiedPackage> {
  const pem = options.signer.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const trust = TrustStore.fromPem([{ source: 'signing key', text: pem }]);
  try {
    return await verifyPackage(path, { trust });
  } catch (cause) {
    throw new PackError(
      'PACK_SELF_CHECK_FAILED',
      `The written package does not verify (${messageOf(cause)}); was a source file changed while packing?`,
      { cause },
    );
  }
}
