/**
 * Errors that cross a thread. A structured clone of an Error keeps its message and little
 * else (not its class, code, details or cause), so a thread sends what it threw in this
 * form and the main thread rebuilds it as the error it was: a rejection stays a
 * PackageRejectedError with its code and details, a file-system error keeps its errno code,
 * and the chain of causes comes along.
 */
import {
  errnoOf,
  HotocrError,
  InferenceError,
  isErrorCode,
  PackageRejectedError,
  REJECTION_CODES,
  type RejectionCode,
} from './errors.js';

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** hotocr's code, or a system error's errno code (ENOENT, EIO...). */
  readonly code?: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: SerializedError;
}

/** Causes kept below the error itself: enough to say why, bounded against a cycle. */
const CAUSE_DEPTH = 4;

const REJECTIONS: ReadonlySet<string> = new Set(REJECTION_CODES);

function isRejection(code: string | undefined): code is RejectionCode {
  return code !== undefined && REJECTIONS.has(code);
}

/** Details as plain data: a value a structured clone would refuse (a function) is given as text. */
function plain(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    try {
      out[k] = structuredClone(v);
    } catch {
      out[k] = String(v);
    }
  }
  return out;
}

/** What was thrown, as data a thread can post. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  const e = error instanceof Error ? error : new Error(String(error));
  const code = error instanceof HotocrError ? error.code : errnoOf(error);
  const details =
    error instanceof HotocrError && Object.keys(error.details).length > 0 ? error.details : undefined;
  return {
    name: e.name,
    message: e.message,
    ...(code !== undefined ? { code } : {}),
    ...(details ? { details: plain(details) } : {}),
    ...(e.cause !== undefined && depth < CAUSE_DEPTH ? { cause: serializeError(e.cause, depth + 1) } : {}),
  };
}

/** The error a thread serialized, rebuilt as its class with its code, details and cause. */
export function deserializeError(s: SerializedError): Error {
  const options = {
    ...(s.details ? { details: s.details } : {}),
    ...(s.cause ? { cause: deserializeError(s.cause) } : {}),
  };
  if (isRejection(s.code)) return new PackageRejectedError(s.code, s.message, options);
  if (s.code === 'INFERENCE_FAILED') return new InferenceError(s.message, options);
  if (isErrorCode(s.code)) return new HotocrError(s.code, s.message, options);
  const e = new Error(s.message, options.cause ? { cause: options.cause } : undefined);
  e.name = s.name;
  // A file-system error keeps its errno code, as if it had been thrown here.
  return s.code !== undefined ? Object.assign(e, { code: s.code }) : e;
}
