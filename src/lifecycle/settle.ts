/**
 * The settle step: a transaction's outcome (`TxEvent` confirmed / failed) written to the store. Every id of the tx
 * stays in flight (`tracker.settle`) until its outcome is committed, then the next step follows: a landed claim's
 * details are read, a landed complete sends the resume, a landed fail or resume ends the record. A failed or
 * reverted tx, or one whose receipt lacks our event, sends its ids to the chain re-check.
 */
import { getHeader } from '../chain/reads.ts';
import { errorText } from '../internal/errors.ts';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import type { TxEvent } from '../txmgr/types.ts';
import { type ActivityEvents, activityEvents } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import type { FillDetails } from './details.ts';
import type { Finish, Recheck } from './finish.ts';
import { transition } from './records.ts';

/** A tx outcome the lifecycle acts on. */
export type SettledTx = Extract<TxEvent, { type: 'confirmed' | 'failed' }>;
type Confirmed = Extract<TxEvent, { type: 'confirmed' }>;

/** Handles one tx event (events other than confirmed / failed are ignored). */
export type Settle = (ev: TxEvent) => Promise<void>;

/** The settle step. */
export function createSettle(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'rpc' | 'now' | 'clock' | 'tracker' | 'log' | 'metrics'>,
  deps: { finish: Finish; recheck: Recheck; fillDetails: FillDetails },
): Settle {
  const { opts, store, rpc, now, clock, tracker, log, metrics } = ctx;

  async function claimed(
    ev: Confirmed,
    events: ActivityEvents,
    release: (ids: readonly string[]) => void,
  ): Promise<void> {
    const ids = ev.activityIds;
    const mine = ids.filter((id) => events.claimed.get(id) === opts.wallet);
    const others = ids.filter((id) => !mine.includes(id));
    for (const id of mine) await transition(store, now, id, ['claiming'], 'claimed');
    if (mine.length) {
      await deps.fillDetails(mine);
      log.info('claimed', { activity_ids: mine.join(','), tx_hash: ev.hash, block: ev.blockNumber });
    }
    release(ids);
    if (others.length) await deps.recheck(others, 'not claimed by our claim tx');
  }

  async function heartbeated(
    ev: Confirmed,
    events: ActivityEvents,
    release: (ids: readonly string[]) => void,
  ): Promise<void> {
    const ids = ev.activityIds;
    // The heartbeat's own block time, not "now": after a stall (a frozen process, a slow RPC) the confirmation
    // may be handled long after the block, and "now" would make a lapsed activity look freshly heartbeated.
    const t = await getHeader(rpc, ev.blockNumber)
      .then((h) => h.timestamp)
      .catch((e: unknown) => {
        log.warn('heartbeat block unreadable; taking the chain clock as its time', {
          block: ev.blockNumber,
          error: errorText(e),
        });
        return Math.floor(clock.nowS());
      });
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

  return async (ev) => {
    if (ev.type !== 'confirmed' && ev.type !== 'failed') return;
    await tracker.settle(ev, (release) => outcome(ev, release));
  };
}
