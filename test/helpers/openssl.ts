import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs openssl with the given arguments in `cwd`; rejects with its stderr on failure. */
export async function openssl(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('openssl', args, { cwd });
  return stdout;
}

export type TestKeyType = 'rsa' | 'rsa-1024' | 'ec-p256' | 'ec-p384' | 'ec-p521' | 'ec-secp256k1' | 'ed25519';

/** Makes `<name>.key` and `<name>.pub` in `dir` with openssl, as an operator would. */
export async function opensslKey(
  dir: string,
  name: string,
  type: TestKeyType = 'rsa',
): Promise<{ key: string; pub: string }> {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  const algo: Record<TestKeyType, string[]> = {
    rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
    'rsa-1024': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
    'ec-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    'ec-p384': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    'ec-p521': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
    'ec-secp256k1': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
    ed25519: ['-algorithm', 'ED25519'],
  };
  await openssl(dir, 'genpkey', ...algo[type], '-out', key);
  await openssl(dir, 'pkey', '-in', key, '-pubout', '-out', pub);
  return { key, pub };
}

export interface CertSpec {
  /** Extension lines for the certificate (openssl x509v3 config syntax). */
  readonly ext: string[];
  readonly days?: number;
  readonly keyType?: TestKeyType;
  /** Certify this existing private key (a path) instead of making a new one. */
  readonly key?: string;
  /** The subject's common name (default: the certificate's file name; '' for an empty subject). */
  readonly cn?: string;
  /** The digest the issuer signs with (openssl's -sha1, -sha384...; default its own). */
  readonly md?: string;
}

export interface TestCert {
  readonly key: string;
  readonly cert: string;
}

/** A self-signed CA certificate. */
export async function opensslRoot(
  dir: string,
  name: string,
  spec: Partial<CertSpec> = {},
): Promise<TestCert> {
  const key = spec.key ?? (await opensslKey(dir, name, spec.keyType ?? 'rsa')).key;
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(
    ext,
    `[req]\ndistinguished_name = dn\n[dn]\n[v3]\n${(spec.ext ?? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash']).join('\n')}\n`,
  );
  await openssl(
    dir,
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-subj',
    `/CN=${spec.cn ?? name}`,
    ...(spec.md ? [`-${spec.md}`] : []),
    '-days',
    String(spec.days ?? 3650),
    '-out',
    cert,
    '-config',
    ext,
    '-extensions',
    'v3',
  );
  return { key, cert };
}

/** A certificate for a new key, issued by `issuer`. */
export async function opensslIssue(
  dir: string,
  name: string,
  issuer: TestCert,
  spec: CertSpec,
): Promise<TestCert> {
  const key = spec.key ?? (await opensslKey(dir, name, spec.keyType ?? 'rsa')).key;
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, `[v3]\n${spec.ext.join('\n')}\n`);
  await openssl(
    dir,
    'req',
    '-new',
    '-key',
    key,
    '-subj',
    // An empty name gives an empty subject, as Sigstore's short-lived certificates have.
    spec.cn === '' ? '/' : `/CN=${spec.cn ?? name}`,
    '-out',
    csr,
    '-config',
    '/dev/null',
  );
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    issuer.cert,
    '-CAkey',
    issuer.key,
    '-CAcreateserial',
    ...(spec.md ? [`-${spec.md}`] : []),
    '-days',
    String(spec.days ?? 365),
    '-out',
    cert,
    '-extfile',
    ext,
    '-extensions',
    'v3',
  );
  return { key, cert };
}

export const CA_EXT = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
export const LEAF_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=codeSigning',
];
