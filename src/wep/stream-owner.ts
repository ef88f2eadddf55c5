/**
 * Which wcp owns the executor's one TaskStream. A wcp names itself by the worker address in its HelloAck; a stream
 * becomes current only once that HelloAck has arrived, so a client that connects later cannot push the daemon's
 * stream aside just by dialling.
 *
 * The rule (`decideOwnership`): with no current stream the newcomer takes it; the same identity always takes over
 * (its wcp restarted, or its old stream is half-open); any other newcomer — a different address, or none at all —
 * is refused while the current stream is live, i.e. heard from within `staleAfterMs`. A current stream silent that
 * long no longer counts as live, so a wcp whose predecessor vanished without closing is not locked out for good.
 */

/** What the rule needs to know about the current stream. */
export interface StreamOwner {
  /** Normalised worker address from its HelloAck; undefined when that wcp sent none. */
  identity: string | undefined;
  /** When anything last arrived on it (ms since the epoch). */
  lastHeardAt: number;
}

/** Stable code in the refusal's gRPC status details (`EXECUTOR_IN_USE: …`). */
export const EXECUTOR_IN_USE = 'EXECUTOR_IN_USE';

/** Default for `staleAfterMs`: a few of wcp's keepalive intervals (5 s by default). */
export const DEFAULT_STALE_STREAM_MS = 30_000;

export type OwnershipVerdict =
  | { take: true; replaces: 'none' | 'same-identity' | 'stale' }
  | { take: false; code: typeof EXECUTOR_IN_USE; message: string };

/** A worker address as compared: trimmed and lower-case; empty or missing is no identity. */
export function normalizeIdentity(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim().toLowerCase();
  return s === '' ? undefined : s.slice(0, 128);
}

/** Whether a newcomer with `candidate` identity may take the stream from `current` at `now`. Pure. */
export function decideOwnership(
  current: StreamOwner | undefined,
  candidate: string | undefined,
  now: number,
  staleAfterMs: number = DEFAULT_STALE_STREAM_MS,
): OwnershipVerdict {
  if (current === undefined) return { take: true, replaces: 'none' };
  if (candidate !== undefined && candidate === current.identity) return { take: true, replaces: 'same-identity' };
  if (now - current.lastHeardAt >= staleAfterMs) return { take: true, replaces: 'stale' };
  const owner = current.identity === undefined ? 'a wcp that gave no worker address' : `wcp worker ${current.identity}`;
  const who = candidate === undefined ? 'a client that gave no worker address' : `wcp worker ${candidate}`;
  return {
    take: false,
    code: EXECUTOR_IN_USE,
    message: `this executor serves ${owner}; refused a stream from ${who} (one wcp per executor: stop the other wcp, or point this one at its own executor)`,
  };
}
