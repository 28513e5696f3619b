/**
 * Which of a version's graphs an inference pool opens from which bytes: pure decisions, made
 * before any thread is asked, so they can be checked without one.
 */
import type { BuiltinRuntime, GraphRole, Graphs } from './inference-protocol.js';
import type { SessionOptions } from './ort-session.js';

export const ROLES = ['det', 'rec', 'cls'] as const satisfies readonly GraphRole[];

export interface PlanInput {
  /** The manifest's graphs: entry name per role. */
  readonly graphs: Partial<Record<GraphRole, string>>;
  /** Verified bytes kept, by entry name (a graph held optimized may come without them). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** SHA-256 of each entry, as verified, when the caller has them. */
  readonly digests?: ReadonlyMap<string, string> | undefined;
  readonly runtime: BuiltinRuntime;
  readonly session: SessionOptions;
}

export interface SessionPlan {
  /** The graphs this version has. */
  readonly present: readonly GraphRole[];
  /** Their verified bytes, where kept. */
  readonly bytes: Partial<Graphs>;
  /** Each graph's session key: its verified digest, with what opens it and how. */
  readonly keys: Partial<Record<GraphRole, string>>;
  /**
   * The keys, when every graph has one (a version shares all its sessions or none);
   * undefined otherwise.
   */
  readonly keySet: ReadonlySet<string> | undefined;
}

export interface GraphPlan {
  /** Graphs whose optimized form this process keeps: opened from it, not optimized again. */
  readonly optimized: Partial<Record<GraphRole, Uint8Array>>;
  /** Graphs with a digest not optimized before: the first thread optimizes them and sends them back. */
  readonly unseen: readonly GraphRole[];
  /** A graph with neither bytes nor an optimized form: the version cannot load. */
  readonly missing: GraphRole | undefined;
}

/** The session key of a graph: the same digest opened the same way is the same session. */
export function sessionKey(runtime: BuiltinRuntime, session: SessionOptions, sha256: string): string {
  return `${runtime} ${JSON.stringify(session)} ${sha256}`;
}

/** Which graphs a version has, their bytes, and the keys its sessions would be shared under. */
export function planSessions(input: PlanInput): SessionPlan {
  const present = ROLES.filter((r) => input.graphs[r] !== undefined);
  const bytes: Partial<Graphs> = {};
  const keys: Partial<Record<GraphRole, string>> = {};
  for (const role of present) {
    const name = input.graphs[role]!;
    const kept = input.files.get(name);
    if (kept) bytes[role] = kept;
    const digest = input.digests?.get(name);
    if (digest !== undefined) keys[role] = sessionKey(input.runtime, input.session, digest);
  }
  const keyList = present.flatMap((r) => (keys[r] === undefined ? [] : [keys[r]]));
  return { present, bytes, keys, keySet: keyList.length === present.length ? new Set(keyList) : undefined };
}

/**
 * Where each graph of a version that shares no sessions opens from: its optimized form when
 * this process keeps one (`optimizedOf`, asked only for onnxruntime-node, whose form it is),
 * its verified bytes otherwise.
 */
export function planGraphs(
  input: PlanInput,
  sessions: Pick<SessionPlan, 'present' | 'bytes'>,
  optimizedOf: (sha256: string) => Uint8Array | undefined,
): GraphPlan {
  const optimized: Partial<Record<GraphRole, Uint8Array>> = {};
  const unseen: GraphRole[] = [];
  if (input.runtime === 'onnxruntime-node')
    for (const role of sessions.present) {
      const digest = input.digests?.get(input.graphs[role]!);
      if (digest === undefined) continue;
      const form = optimizedOf(digest);
      if (form) optimized[role] = form;
      else unseen.push(role);
    }
  return {
    optimized,
    unseen,
    missing: sessions.present.find((r) => optimized[r] === undefined && sessions.bytes[r] === undefined),
  };
}

/**
 * The buffers the thread that optimizes the unseen graphs may take rather than copy: of
 * those the pool may move (`ours`), the unseen graphs' own; all of them when it is the only
 * thread (no other needs a copy).
 */
export function movableByFirst(
  unseen: readonly GraphRole[],
  bytes: Partial<Graphs>,
  ours: ReadonlySet<Uint8Array>,
  threads: number,
): Set<Uint8Array> {
  if (threads === 1) return new Set(ours);
  return new Set(unseen.flatMap((r) => (bytes[r] !== undefined && ours.has(bytes[r]) ? [bytes[r]] : [])));
}

/**
 * The buffers thread `i` of `threads` may take: only the last one, and only verified bytes
 * still to be opened (not optimized) that the pool may move; copies for the others are made
 * before it is sent.
 */
export function movableBy(
  i: number,
  threads: number,
  plan: {
    readonly present: readonly GraphRole[];
    readonly optimized: Partial<Record<GraphRole, Uint8Array>>;
    readonly bytes: Partial<Graphs>;
  },
  ours: ReadonlySet<Uint8Array>,
): Set<Uint8Array> {
  if (i !== threads - 1) return new Set();
  return new Set(
    plan.present.flatMap((r) => {
      const b = plan.bytes[r];
      return plan.optimized[r] === undefined && b !== undefined && ours.has(b) ? [b] : [];
    }),
  );
}

/** The verified bytes of the graphs not (yet) held optimized: what a thread opens from bytes. */
export function unoptimized(plan: {
  readonly present: readonly GraphRole[];
  readonly optimized: Partial<Record<GraphRole, Uint8Array>>;
  readonly bytes: Partial<Graphs>;
}): Uint8Array[] {
  return plan.present.flatMap((r) => {
    const b = plan.bytes[r];
    return plan.optimized[r] === undefined && b !== undefined ? [b] : [];
  });
}
