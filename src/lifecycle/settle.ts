/**
 * The settle step: a transaction's outcome (`TxEvent` confirmed / failed) written to the store. Every id of the tx
 * stays in flight (`tracker.settle`) until its outcome is committed, then the next step follows: a landed claim's
 * details are read, a landed complete sends the resume, a landed fail or resume ends the record. A failed or
 * reverted tx, or one whose receipt lacks our event, sends its ids to the chain re-check.
 *
 * Liveness acts on inclusion (`mined`), before confirmations: a mined heartbeat paces the next one from its block's
 * time, and each id it did not heartbeat (the receipt's `ActivityHeartbeat` events are read per id) is re-checked; a mined claim makes the ids it won `claimed` and dispatchable at once. A `reorged` tx is pending again:
 * its heartbeat holds the next one back until it is mined again, its claim's ids are in flight again. What is
 * recorded as final (done records, resumes, repairs) still waits for `confirmed`. Events of one nonce are handled
 * one after another, in the order they came.
 */
import { getHeader } from '../chain/reads.ts';
import { withRetry } from '../chain/transport.ts';
import { errorText } from '../internal/errors.ts';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import type { TxEvent } from '../txmgr/types.ts';
import { type ActivityEvents, activityEvents } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import type { FillDetails } from './details.ts';
import type { Finish, Recheck } from './finish.ts';
import { transition, transitionMany } from './records.ts';

/** A tx outcome the lifecycle acts on. */
export type SettledTx = Extract<TxEvent, { type: 'confirmed' | 'failed' }>;
type Confirmed = Extract<TxEvent, { type: 'confirmed' }>;
type Mined = Extract<TxEvent, { type: 'mined' }>;
type Reorged = Extract<TxEvent, { type: 'reorged' }>;

/** Handles one tx event (mined, reorged, confirmed, failed; the others are ignored). */
export type Settle = (ev: TxEvent) => Promise<void>;

/** The settle step. */
export function createSettle(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'rpc' | 'now' | 'clock' | 'tracker' | 'log' | 'metrics'>,
  deps: { finish: Finish; recheck: Recheck; fillDetails: FillDetails },
): Settle {
  const { opts, store, rpc, now, clock, tracker, log, metrics } = ctx;

  /**
   * The heartbeat's own block time, not "now": after a stall (a frozen process, a slow RPC) the event may be
   * handled long after the block, and "now" would make a lapsed activity look freshly heartbeated.
   */
  async function blockTime(blockNumber: number): Promise<number> {
    return await withRetry(() => getHeader(rpc, blockNumber))
      .then((h) => h.timestamp)
      .catch((e: unknown) => {
        log.warn('heartbeat block unreadable; taking the chain clock as its time', {
          block: blockNumber,
          error: errorText(e),
        });
        return Math.floor(clock.nowS());
      });
  }

  /** Inclusion: heartbeats pace from their block; a claim's won ids become `claimed` (dispatchable) now. */
  async function mined(ev: Mined): Promise<void> {
    if (ev.status === 'reverted') return; // the confirmation re-checks its ids
    const events = activityEvents(ev.logs, opts.taskQueue, opts.wallet);
    if (ev.kind === 'heartbeat') {
      const ok = ev.activityIds.filter((id) => events.heartbeat.has(id));
      if (ok.length) tracker.heartbeatMined(ok, ev.nonce, await blockTime(ev.blockNumber));
      // `heartbeatBatch` skips ids the sender does not hold without reverting: each id the receipt does not name
      // is re-checked now, not heartbeated blindly until its confirmation (or its timeout).
      const refused = ev.activityIds.filter((id) => !events.heartbeat.has(id) && store.has(inflightKey(id)));
      if (refused.length) await deps.recheck(refused, 'heartbeat mined without accepting it');
      return;
    }
    if (ev.kind !== 'claim' && ev.kind !== 'claim_batch') return;
    const mine = ev.activityIds.filter((id) => events.claimed.get(id) === opts.wallet);
    if (mine.length === 0) return;
    const moved = (await transitionMany(store, now, mine, ['claiming'], 'claimed')).map((r) => r.activity_id);
    // The claim's outcome for these ids is committed: dispatch, heartbeats and finishing may act on them. Ids the
    // claim did not win stay in flight until its confirmation (their fate is the re-check's).
    tracker.release(ev.kind, mine, ev.nonce);
    if (moved.length === 0) return;
    log.info('claimed', { activity_ids: moved.join(','), tx_hash: ev.hash, block: ev.blockNumber });
    await deps.fillDetails(moved).catch((e: unknown) =>
      log.warn('reading claimed activities failed; the confirmation or the re-check reads them', {
        activity_ids: moved.join(','),
        error: errorText(e),
      }),
    );
  }

  /** A reorg took the tx out of its block: pending again until it is mined again. */
  function reorged(ev: Reorged): void {
    if (ev.kind === 'heartbeat') tracker.heartbeatReorged(ev.activityIds, ev.nonce);
    else if (ev.kind === 'claim' || ev.kind === 'claim_batch') {
      // Ids released at inclusion are in flight again, so no re-check acts on chain state without the claim.
      const free = ev.activityIds.filter((id) => !tracker.has(id));
      if (free.length) tracker.restore(ev.kind, free, ev.nonce);
    }
  }

  async function claimed(
    ev: Confirmed,
    events: ActivityEvents,
    release: (ids: readonly string[]) => void,
  ): Promise<void> {
    const ids = ev.activityIds;
    const mine = ids.filter((id) => events.claimed.get(id) === opts.wallet);
    const others = ids.filter((id) => !mine.includes(id));
    for (const id of mine) await transition(store, now, id, ['claiming'], 'claimed');
    // Already read when the claim was mined, unless that read failed or came before a restart.
    const lacking = mine.filter((id) => {
      const r = store.get(inflightKey(id), InflightSchema);
      return r !== undefined && (r.expires_at_s === undefined || !r.activity_type);
    });
    if (lacking.length) await deps.fillDetails(lacking);
    if (mine.length) log.debug('claim confirmed', { activity_ids: mine.join(','), tx_hash: ev.hash });
    release(ids);
    if (others.length) await deps.recheck(others, 'not claimed by our claim tx');
  }

  async function heartbeated(
    ev: Confirmed,
    events: ActivityEvents,
    release: (ids: readonly string[]) => void,
  ): Promise<void> {
    const ids = ev.activityIds;
    const t = await blockTime(ev.blockNumber);
    const ok = ids.filter((id) => events.heartbeat.has(id));
    try {
      await store.transact((tx) => {
        for (const id of ok) {
          const r = tx.get(inflightKey(id), InflightSchema);
          if (r)
            tx.put(inflightKey(id), {
              ...r,
              last_heartbeat_s: Math.max(r.last_heartbeat_s ?? 0, Math.min(t, r.expires_at_s ?? t)),
              updated_at_ms: now(),
            });
        }
      });
    } finally {
      release(ids);
    }
    const refused = ids.filter((id) => !events.heartbeat.has(id) && store.has(inflightKey(id)));
    if (refused.length) await deps.recheck(refused, 'heartbeat not accepted');
  }

  async function completed(
    events: ActivityEvents,
    ids: readonly string[],
    release: (ids: readonly string[]) => void,
  ): Promise<void> {
    for (const id of ids) {
      if (!events.completed.has(id)) {
        release([id]);
        await deps.recheck([id], 'complete tx emitted no ActivityCompleted');
        continue;
      }
      const r = await transition(store, now, id, ['completing'], 'resuming');
      release([id]);
      if (r) await deps.finish.submitResume(r);
    }
  }

  async function failed(
    events: ActivityEvents,
    ids: readonly string[],
    release: (ids: readonly string[]) => void,
  ): Promise<void> {
    for (const id of ids) {
      if (events.failed.has(id)) {
        const r = store.get(inflightKey(id), InflightSchema);
        await deps.finish.finish(id, 'failed', { reason: r?.fail_reason ?? '' });
      } else {
        release([id]);
        await deps.recheck([id], 'fail tx emitted no ActivityFailed');
      }
    }
  }

  async function resumed(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const r = store.get(inflightKey(id), InflightSchema);
      if (r?.state === 'resuming')
        await deps.finish.finish(id, 'completed', { result_ref: r.result_ref ?? '', resumed: true });
    }
  }

  async function outcome(ev: SettledTx, release: (ids: readonly string[]) => void): Promise<void> {
    const ids = ev.activityIds;
    metrics.txSent.inc({ kind: ev.kind, outcome: ev.type === 'failed' ? 'failed' : ev.status });
    if (ev.type === 'failed' || ev.status === 'reverted') {
      // Nothing of it is committed: the chain re-check decides, and it skips ids still in flight.
      release(ids);
      if (ev.type === 'failed')
        log.warn('transaction failed', {
          kind: ev.kind,
          nonce: ev.nonce,
          activity_ids: ids.join(','),
          error: ev.error.message,
        });
      else
        log.warn('transaction reverted', {
          kind: ev.kind,
          nonce: ev.nonce,
          activity_ids: ids.join(','),
          reason: ev.revert?.message ?? '',
        });
      if (ids.length) await deps.recheck(ids, `${ev.kind} ${ev.type === 'failed' ? 'tx failed' : 'reverted'}`);
      return;
    }
    const events = activityEvents(ev.logs, opts.taskQueue, opts.wallet);
    switch (ev.kind) {
      case 'claim':
      case 'claim_batch':
        return await claimed(ev, events, release);
      case 'heartbeat':
        return await heartbeated(ev, events, release);
      case 'complete':
        return await completed(events, ids, release);
      case 'fail':
        return await failed(events, ids, release);
      case 'resume':
        return await resumed(ids);
      default:
        return;
    }
  }

  async function handle(ev: TxEvent): Promise<void> {
    if (ev.type === 'mined') return await mined(ev);
    if (ev.type === 'reorged') return reorged(ev);
    if (ev.type !== 'confirmed' && ev.type !== 'failed') return;
    await tracker.settle(ev, (release) => outcome(ev, release));
  }

  /** Nonce → the handling of its latest event: a slot's events are handled in order (mined before confirmed). */
  const queues = new Map<number, Promise<void>>();
  return async (ev) => {
    if (!('nonce' in ev) || !('activityIds' in ev)) return;
    const prev = queues.get(ev.nonce) ?? Promise.resolve();
    const mine = prev.then(
      () => handle(ev),
      () => handle(ev),
    );
    queues.set(ev.nonce, mine);
    try {
      await mine;
    } finally {
      if (queues.get(ev.nonce) === mine) queues.delete(ev.nonce);
    }
  };
}
