import type { HotocrError } from '../errors.js';
import type { TrustEntry, TrustStore } from '../verify/index.js';

/** What one reading of the trust store changed. */
export interface TrustReload {
  readonly ok: boolean;
  readonly added: readonly TrustEntry[];
  readonly removed: readonly TrustEntry[];
  readonly error?: { code: HotocrError['code']; message: string };
}

/** One model's outcome of retiring untrusted versions. */
export interface RetireReport {
  readonly name: string;
  readonly retired: readonly string[];
  readonly active: string | null;
  readonly refused?: string;
}

/** What the server's trust routes and metrics need: the trust in use, read again, and retiring. */
export interface TrustControl {
  current(): TrustStore;
  reload(cause: string): Promise<TrustReload>;
  /** Retires every version whose package no longer verifies under the trust in use. */
  retire(): Promise<RetireReport[]>;
}
