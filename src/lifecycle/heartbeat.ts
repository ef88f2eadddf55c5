/**
 * The heartbeat step: every held activity whose heartbeat is due, and has none in flight, gets one, in batches of
 * `HEARTBEAT_BATCH_IDS` ids per tx. An activity's heartbeat is due `interval` after its last committed heartbeat,
 * where interval = min(`heartbeatIntervalMs`, its on-chain heartbeat timeout / 3).
 */
import type { Inflight } from '../store/records.ts';
import { heartbeatCall } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import { isExpired } from './expiry.ts';
import { HEARTBEAT_BATCH_IDS, type LifecycleOptions } from './options.ts';
import { listHeld } from './records.ts';
import type { Send } from './send.ts';
import { HEARTBEAT_STATES } from './transitions.ts';

/** Seconds between heartbeats of `r`. */
export function heartbeatIntervalS(r: Inflight, opts: Pick<LifecycleOptions, 'heartbeatIntervalMs'>): number {
  const byTimeout = r.heartbeat_timeout_s ? r.heartbeat_timeout_s / 3 : Number.POSITIVE_INFINITY;
  return Math.min(opts.heartbeatIntervalMs / 1000, byTimeout);
}

/** Activities due a heartbeat at chain time `nowS`, each with the chain time it came due (for the lateness histogram). */
export function dueHeartbeats(
  ctx: Pick<LifecycleContext, 'store' | 'tracker' | 'opts'>,
  nowS: number,
): Map<string, number> {
  const due = new Map<string, number>();
  for (const r of listHeld(ctx.store)) {
    if (!HEARTBEAT_STATES.has(r.state) || ctx.tracker.heartbeatInFlight(r.activity_id)) continue;
    if (r.last_heartbeat_s === undefined || isExpired(r, nowS, false)) continue;
    const interval = heartbeatIntervalS(r, ctx.opts);
    if (nowS - r.last_heartbeat_s >= interval) due.set(r.activity_id, r.last_heartbeat_s + interval);
  }
  return due;
}

/** The heartbeat step: sends the due heartbeats. Waits for the chain clock's first block. */
export async function heartbeatRound(
  ctx: Pick<LifecycleContext, 'store' | 'tracker' | 'opts' | 'clock' | 'log' | 'metrics'>,
  send: Send,
): Promise<void> {
  if (!ctx.clock.known()) return;
  const due = dueHeartbeats(ctx, ctx.clock.nowS());
  const ids = [...due.keys()];
  for (let i = 0; i < ids.length; i += HEARTBEAT_BATCH_IDS) {
    const batch = ids.slice(i, i + HEARTBEAT_BATCH_IDS);
    const res = await send(heartbeatCall(ctx.opts.taskQueue, batch), false);
    if (!res.ok) ctx.log.warn('heartbeat not sent', { activity_ids: batch.join(','), error: res.error.message });
    else {
      const sentS = ctx.clock.nowS();
      for (const id of batch) ctx.metrics.heartbeatLateness.observe(Math.max(0, sentS - (due.get(id) ?? sentS)));
      ctx.log.debug('heartbeat sent', { count: batch.length, nonce: res.nonce });
    }
  }
}
