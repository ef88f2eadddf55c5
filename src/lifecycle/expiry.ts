/**
 * Local expiry: an activity past its lifetime, or past its heartbeat timeout with no heartbeat in flight, can no
 * longer be acted on by us on chain, so it is dropped locally without sending anything.
 */
import type { Inflight } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import { type Decision, endDecision, NOTHING } from './effects.ts';
import { listHeld } from './records.ts';

/** What the in-flight tracker knows of an activity's heartbeats beyond its record. */
export interface HeartbeatView {
  /** A heartbeat is being sent and not mined yet: it may land before the timeout, and its outcome decides. */
  pending: boolean;
  /** Block time of the newest mined (not yet confirmed) heartbeat the chain accepted. */
  minedS?: number | undefined;
}

/** The activity's last heartbeat as the chain sees it now: the confirmed one, or a newer mined one. */
export function lastHeartbeatS(r: Inflight, minedS: number | undefined): number | undefined {
  if (minedS === undefined) return r.last_heartbeat_s;
  return Math.max(r.last_heartbeat_s ?? 0, minedS);
}

/**
 * Whether `r` has expired at chain time `nowS`. A heartbeat pending keeps it alive; a mined one moves its last
 * heartbeat forward (liveness is judged by inclusion, not by confirmation depth).
 */
export function isExpired(r: Inflight, nowS: number, hb: HeartbeatView = { pending: false }): boolean {
  if (r.expires_at_s !== undefined && nowS > r.expires_at_s) return true;
  if (hb.pending) return false;
  const last = lastHeartbeatS(r, hb.minedS);
  return last !== undefined && r.heartbeat_timeout_s !== undefined && nowS > last + r.heartbeat_timeout_s;
}

/** The tracker's view of `id`'s heartbeats. */
export function heartbeatView(ctx: Pick<LifecycleContext, 'tracker'>, id: string): HeartbeatView {
  return { pending: ctx.tracker.heartbeats.pending(id), minedS: ctx.tracker.heartbeats.lastMinedS(id) };
}

/** `isExpired` at the context's chain time and in-flight state. */
export function expiredNow(ctx: Pick<LifecycleContext, 'clock' | 'tracker'>, r: Inflight): boolean {
  return isExpired(r, ctx.clock.nowS(), heartbeatView(ctx, r.activity_id));
}

/** What the expiry decision reads besides the record. */
export interface ExpiryFacts {
  nowMs: number;
  /** Chain time, seconds. */
  nowS: number;
  hb: HeartbeatView;
  /** A claim/complete/fail/resume tx is in flight for the id. */
  inFlight: boolean;
}

/**
 * Ends `r` when it expired. Claiming and resuming records, and any record with a claim, complete, fail or resume
 * in flight, are left to their tx's outcome (a complete mined just before the timeout must still be followed by
 * its resume, however long its confirmations take). PURE.
 */
export function decideExpiry(r: Inflight | undefined, f: ExpiryFacts): Decision {
  if (!r || r.state === 'claiming' || r.state === 'resuming' || f.inFlight) return NOTHING;
  if (!isExpired(r, f.nowS, f.hb)) return NOTHING;
  return endDecision(
    r.activity_id,
    r,
    'expired',
    f.nowMs,
    {},
    'heartbeat timeout or lifetime passed: dropped locally, nothing sent',
  );
}

/** The expiry step: every held record decided by `decideExpiry` (once the chain clock is known). */
export async function expireRound(
  ctx: Pick<LifecycleContext, 'store' | 'now' | 'clock' | 'tracker'>,
  decide: (id: string, decider: (r: Inflight | undefined) => Decision) => Promise<void>,
): Promise<void> {
  if (!ctx.clock.known()) return;
  for (const r of listHeld(ctx.store)) {
    const id = r.activity_id;
    const f: ExpiryFacts = {
      nowMs: ctx.now(),
      nowS: ctx.clock.nowS(),
      hb: heartbeatView(ctx, id),
      inFlight: ctx.tracker.has(id),
    };
    if (decideExpiry(r, f).writes.length) await decide(id, (cur) => decideExpiry(cur, f));
  }
}
