import type { ErrorCode } from '../errors.js';
import type { SignerInfo, TrustEntry } from '../verify/index.js';

/** Every state change the registry reports; the server streams these and the dashboard shows them. */
export type RegistryEvent =
  | { type: 'package-seen'; ts: string; path: string; source: string }
  /** A package the watched folder or a registry handed over again, not taken (the same SHA-256 as before). */
  | { type: 'skipped'; ts: string; path: string; source: string; sha256: string; reason: string }
  | { type: 'verifying'; ts: string; path: string; source: string }
  | {
      type: 'rejected';
      ts: string;
      path: string;
      source: string;
      code: ErrorCode;
      message: string;
      sha256?: string;
      name?: string;
      version?: string;
      /** A seed-style package (signature over model.onnx alone). */
      legacy?: true;
    }
  | {
      type: 'verified';
      ts: string;
      path: string;
      source: string;
      name: string;
      version: string;
      sha256: string;
      signer: SignerInfo;
      /** When the package stops being accepted, if it says. */
      expires?: string;
      verifyMs: number;
      /** Accepted under --allow-legacy-signatures: the signature covers model.onnx alone. */
      legacy?: true;
    }
  | { type: 'loading'; ts: string; name: string; version: string; sha256: string }
  | {
      type: 'ready';
      ts: string;
      name: string;
      version: string;
      sha256: string;
      /** The loader that made the model (onnxruntime-node, onnxruntime-wasm or a plugin's name). */
      loader: string;
      /** Opening the graphs. */
      loadMs: number;
      /** Reading the warm-up image. */
      warmupMs: number;
      /** How much the process grew (resident set) from the start of the load to the end of the warm-up. */
      memoryBytes: number;
      /** Graph sessions shared with another loaded version (their memory counted with it). */
      sharedSessions: number;
    }
  | {
      type: 'failed';
      ts: string;
      name: string;
      version: string;
      sha256: string;
      code: ErrorCode;
      message: string;
    }
  | {
      type: 'activated';
      ts: string;
      name: string;
      version: string;
      previous?: string;
      /** Set when the version is lower than the highest ever activated: an operator's move back. */
      below?: string;
      /** Persisting the choice and the switch itself. */
      switchMs: number;
    }
  /** An activation refused because the choice could not be persisted: the version in service stays. */
  | { type: 'activation-failed'; ts: string; name: string; version: string; code: ErrorCode; message: string }
  | { type: 'draining'; ts: string; name: string; version: string; inflight: number }
  /**
   * The trust store was read again (the trust folder changed, SIGHUP, or an admin call): what
   * was added and removed (keys and roots, by fingerprint), or why the folder was not taken.
   */
  | {
      type: 'trust';
      ts: string;
      cause: string;
      added: readonly TrustEntry[];
      removed: readonly TrustEntry[];
      error?: { code: ErrorCode; message: string };
    }
  /** Versions retired because their signer is no longer trusted, and what serves instead. */
  | { type: 'retired'; ts: string; name: string; versions: readonly string[]; active: string | null }
  | { type: 'removed'; ts: string; name: string; versions: readonly string[] }
  | { type: 'released'; ts: string; name: string; version: string };

export type RegistryEventType = RegistryEvent['type'];
