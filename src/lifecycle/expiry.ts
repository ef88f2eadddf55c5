/**
 * Local expiry: an activity past its lifetime, or past its heartbeat timeout with no heartbeat in flight, can no
 * longer be acted on by us on chain, so it is dropped locally without sending anything.
 */
import type { Inflight } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import type { Finish } from './finish.ts';
import { listHeld } from './records.ts';

/**
 * Whether `r` has expired at chain time `nowS`. A heartbeat in flight keeps it alive: it may land before the
 * timeout, and its outcome decides.
 */
export function isExpired(r: Inflight, nowS: number, heartbeatInFlight: boolean): boolean {
  if (r.expires_at_s !== undefined && nowS > r.expires_at_s) return true;
  if (heartbeatInFlight) return false;
  if (
    r.last_heartbeat_s !== undefined &&
    r.heartbeat_timeout_s !== undefined &&
    nowS > r.last_heartbeat_s + r.heartbeat_timeout_s
  )
    return true;
  return false;
}

/** `isExpired` at the context's chain time and in-flight state. */
export function expiredNow(ctx: Pick<LifecycleContext, 'clock' | 'tracker'>, r: Inflight): boolean {
  return isExpired(r, ctx.clock.nowS(), ctx.tracker.heartbeatInFlight(r.activity_id));
}

/** The expiry step: ends every expired record (claiming and resuming are decided by their tx / the chain). */
export async function expireRound(
  ctx: Pick<LifecycleContext, 'store' | 'clock' | 'tracker'>,
  finish: Finish,
): Promise<void> {
  if (!ctx.clock.known()) return;
  const t = ctx.clock.nowS();
  for (const r of listHeld(ctx.store)) {
    if (r.state === 'claiming' || r.state === 'resuming') continue;
    if (isExpired(r, t, ctx.tracker.heartbeatInFlight(r.activity_id))) {
      await finish.finish(
        r.activity_id,
        'expired',
        {},
        'heartbeat timeout or lifetime passed: dropped locally, nothing sent',
      );
    }
  }
}
