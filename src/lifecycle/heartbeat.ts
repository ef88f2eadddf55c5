/**
 * The heartbeat step: every held activity whose heartbeat is due, and has none pending, gets one, in batches of
 * `HEARTBEAT_BATCH_IDS` ids per tx, sent as priority txs (they never wait behind another submit's slow estimate).
 *
 * Paced by inclusion: an activity's heartbeat is due `interval` after its last MINED heartbeat (the confirmed one,
 * or a newer one mined and awaiting its confirmations), where interval = min(`heartbeatIntervalMs`, its on-chain
 * heartbeat timeout / 3). A heartbeat still pending (not mined) holds the next one back; a reorged one is pending
 * again (the lane re-sends it). So liveness never depends on `ethereum.confirmations`. Rounds send heartbeats the
 * recent round-to-block time (`tracker.heartbeats.leadS`, at most half an interval) before they are due, so that on a
 * slow node they still land about an interval apart. What was held at a start is heartbeated by the new process
 * as soon as it can be, due or not (`owed`, see `manager.ts`).
 *
 * No heartbeat for an activity whose complete or fail holds a nonce: sent after it, it could only be mined after it,
 * where the contract skips it (wasted gas). While that tx is still being prepared the heartbeat goes as usual, and
 * is asked again at its turn for a nonce (`stillWanted`): if the complete or fail took a nonce meanwhile (the lane
 * tells at reservation, before the first broadcast), the batch is withdrawn. So liveness never waits on a slow
 * complete, and no heartbeat follows one. If the complete or fail is not sent, fails or reverts, the tracker lets the
 * id go and it is heartbeated again.
 */
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { heartbeatCall } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import { heartbeatView, isExpired, lastHeartbeatS } from './expiry.ts';
import { HEARTBEAT_BATCH_IDS, type LifecycleOptions } from './options.ts';
import { heartbeatEveryS } from './liveness.ts';
import { listHeld } from './records.ts';
import type { Send } from './send.ts';
import { HEARTBEAT_STATES } from './transitions.ts';

/** Txs after which a heartbeat of the same id is wasted (see the file comment). */
const FINISHING_KINDS: ReadonlySet<string> = new Set(['complete', 'fail']);

/**
 * Asked at a heartbeat's turn for a nonce: `id` is still heartbeated (not ended), its record still in a heartbeat
 * state (its complete was not mined and settled meanwhile), and no complete or fail of it holds a nonce.
 */
function wantsHeartbeat(ctx: Pick<LifecycleContext, 'store' | 'tracker'>, id: string): boolean {
  if (!ctx.tracker.heartbeats.inFlight(id) || FINISHING_KINDS.has(ctx.tracker.inLane(id) ?? '')) return false;
  const r = ctx.store.get(inflightKey(id), InflightSchema);
  return r !== undefined && HEARTBEAT_STATES.has(r.state);
}

/** Seconds between heartbeats of `r`. */
export function heartbeatIntervalS(r: Inflight, opts: Pick<LifecycleOptions, 'heartbeatIntervalMs'>): number {
  return heartbeatEveryS(opts.heartbeatIntervalMs, r.heartbeat_timeout_s);
}

/**
 * Activities due a heartbeat at chain time `nowS`, each with the chain time it comes due (for the lateness
 * histogram). Those in `owed` (held at this process's start and not heartbeated by it yet) are due now as soon
 * as they can be heartbeated; ids in `owed` no longer held are dropped from it.
 */
export function dueHeartbeats(
  ctx: Pick<LifecycleContext, 'store' | 'tracker' | 'opts'>,
  nowS: number,
  owed?: Set<string>,
): Map<string, number> {
  const due = new Map<string, number>();
  const leadS = ctx.tracker.heartbeats.leadS();
  const held = listHeld(ctx.store);
  if (owed?.size) {
    const ids = new Set(held.map((r) => r.activity_id));
    for (const id of owed) if (!ids.has(id)) owed.delete(id);
  }
  for (const r of held) {
    const id = r.activity_id;
    if (!HEARTBEAT_STATES.has(r.state) || ctx.tracker.heartbeats.pending(id)) continue;
    if (FINISHING_KINDS.has(ctx.tracker.inLane(id) ?? '')) continue;
    const hb = heartbeatView(ctx, id);
    const last = lastHeartbeatS(r, hb.minedS);
    if (last === undefined || isExpired(r, nowS, hb)) continue;
    const interval = heartbeatIntervalS(r, ctx.opts);
    if (owed?.has(id) || nowS - last >= interval - Math.min(leadS, interval / 2)) due.set(id, last + interval);
  }
  return due;
}

/**
 * The heartbeat step: sends the due heartbeats, and those `owed` (see `dueHeartbeats`; an id leaves `owed` once
 * its heartbeat holds a nonce). Waits for the chain clock's first block.
 */
export async function heartbeatRound(
  ctx: Pick<LifecycleContext, 'store' | 'tracker' | 'opts' | 'clock' | 'log' | 'metrics'>,
  send: Send,
  owed?: Set<string>,
): Promise<void> {
  if (!ctx.clock.known()) return;
  const roundS = ctx.clock.nowS();
  const due = dueHeartbeats(ctx, roundS, owed);
  const ids = [...due.keys()];
  if (ids.length > 0)
    ctx.log.debug('heartbeat round', { due: ids.length, chain_time_s: roundS, owed: owed?.size ?? 0 });
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += HEARTBEAT_BATCH_IDS) batches.push(ids.slice(i, i + HEARTBEAT_BATCH_IDS));
  // All batches at once: their estimates run side by side and the lane reserves them together, so a round of
  // 1,000 ids (five txs) costs one estimate and one reservation turn of latency, not five in a row.
  const sent = await Promise.allSettled(batches.map((batch) => sendBatch(batch)));
  const failed = sent.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;

  async function sendBatch(batch: string[]): Promise<void> {
    // An activity ended while its heartbeat waited for a nonce (a repair, a landed complete) forgets its heartbeat
    // entry, and one whose complete or fail took a nonce meanwhile would be heartbeated after it (wasted): the batch
    // is withdrawn rather than name it on chain; the others go in the next round.
    const stillWanted = () => batch.every((id) => wantsHeartbeat(ctx, id));
    const res = await send({ ...heartbeatCall(ctx.opts.taskQueue, batch), priority: true, stillWanted }, false);
    if (!res.ok)
      (res.stage === 'withdrawn' ? ctx.log.debug : ctx.log.warn)('heartbeat not sent', {
        activity_ids: batch.join(','),
        error: res.error.message,
      });
    else {
      for (const id of batch) owed?.delete(id);
      ctx.tracker.heartbeats.sent(res.nonce, roundS);
      const sentS = ctx.clock.nowS();
      for (const id of batch) ctx.metrics.heartbeatLateness.observe(Math.max(0, sentS - (due.get(id) ?? sentS)));
      ctx.log.debug('heartbeat sent', { count: batch.length, nonce: res.nonce });
    }
  }
}
