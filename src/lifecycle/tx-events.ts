/**
 * Transaction events into settle decisions: the facts a decision reads besides the records (the receipt's activity
 * events, its block's time, what is in flight) gathered, the decision committed and run by the runner. A settled
 * tx's ids stay in flight until its outcome is committed (`tracker.settle`). Events of one nonce are handled one
 * after another, in the order they came (mined before confirmed).
 */
import { getHeader } from '../chain/reads.ts';
import { withRetry } from '../chain/transport.ts';
import { errorText } from '../internal/errors.ts';
import { activityEvents } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import type { EffectsRunner } from './runner.ts';
import { decideSettle, needsBlockTime, type SettleEvent } from './settle.ts';

/** Handles one tx event a decider wants (see `wanted` in `settle.ts`). */
export type SettleTx = (ev: SettleEvent) => Promise<void>;

/** The tx-event handler. */
export function createSettleTx(
  ctx: Pick<LifecycleContext, 'opts' | 'rpc' | 'now' | 'clock' | 'tracker' | 'log' | 'metrics'>,
  runner: Pick<EffectsRunner, 'decide'>,
): SettleTx {
  const { opts, rpc, now, clock, tracker, log, metrics } = ctx;

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

  async function handle(ev: SettleEvent): Promise<void> {
    const events = activityEvents('logs' in ev ? ev.logs : [], opts.taskQueue, opts.wallet);
    const blockTimeS = needsBlockTime(ev, events) && 'blockNumber' in ev ? await blockTime(ev.blockNumber) : undefined;
    const decide = () =>
      runner.decide(ev.activityIds, (records) =>
        decideSettle(ev, records, {
          wallet: opts.wallet,
          nowMs: now(),
          events,
          ...(blockTimeS !== undefined ? { blockTimeS } : {}),
          inFlight: new Set(ev.activityIds.filter((id) => tracker.has(id))),
        }),
      );
    if (ev.type === 'mined' || ev.type === 'reorged') return await decide();
    metrics.txSent.inc({ kind: ev.kind, outcome: ev.type === 'failed' ? 'failed' : ev.status });
    await tracker.settle(ev, decide);
  }

  /** Nonce → the handling of its latest event. */
  const queues = new Map<number, Promise<void>>();
  return async (ev) => {
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
