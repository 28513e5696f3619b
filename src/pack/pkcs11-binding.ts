/**
 * The part of the PKCS#11 binding (the npm package pkcs11js) that signing uses, typed here so
 * that the project builds without it: it is an optional dependency that compiles from source
 * at install (g++, make, python3), and an install without a compiler leaves it out.
 */
import { PackError } from '../errors.js';

type Handle = Buffer;

interface Attribute {
  type: number;
  value?: number | boolean | string | Buffer;
}

export interface Pkcs11Session {
  load(path: string): void;
  close(): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): { label: string };
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin: string): void;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle): Handle | null;
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attribute[]): Attribute[];
  C_SignInit(
    session: Handle,
    mechanism: {
      mechanism: number;
      parameter?: { type: number; hashAlg: number; mgf: number; saltLen: number };
    },
    key: Handle,
  ): void;
  C_Sign(session: Handle, data: Buffer, out: Buffer): Buffer;
}

/** The binding's constructor and the constants signing names. */
export interface Pkcs11Binding {
  PKCS11: new () => Pkcs11Session;
  readonly CKA_CLASS: number;
  readonly CKA_EC_PARAMS: number;
  readonly CKA_EC_POINT: number;
  readonly CKA_KEY_TYPE: number;
  readonly CKA_LABEL: number;
  readonly CKA_MODULUS: number;
  readonly CKA_PUBLIC_EXPONENT: number;
  readonly CKF_SERIAL_SESSION: number;
  readonly CKG_MGF1_SHA256: number;
  readonly CKK_EC: number;
  readonly CKK_RSA: number;
  readonly CKM_ECDSA: number;
  readonly CKM_SHA256: number;
  readonly CKM_SHA256_RSA_PKCS_PSS: number;
  readonly CKO_PRIVATE_KEY: number;
  readonly CKO_PUBLIC_KEY: number;
  readonly CKR_PIN_INCORRECT: number;
  readonly CKU_USER: number;
  readonly CK_PARAMS_RSA_PSS: number;
}

/** The package name, as a value: the binding is resolved when signing needs it, not at build time. */
const PACKAGE = 'pkcs11js';

/** Loads the binding, or says how to install it. */
export async function loadPkcs11Binding(): Promise<Pkcs11Binding> {
  try {
    const loaded = (await import(PACKAGE)) as Pkcs11Binding & { default?: Pkcs11Binding };
    return loaded.default ?? loaded;
  } catch (cause) {
    throw new PackError(
      'PKCS11_UNAVAILABLE',
      'The PKCS#11 binding (the optional npm package pkcs11js) is not installed: it builds from source when the project is installed, which needs a compiler. Install g++, make and python3 (Debian: apt-get install g++ make python3), then run npm ci again.',
      { cause },
    );
  }
}
