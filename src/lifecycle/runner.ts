/**
 * The effects runner: the one place where a lifecycle decision is committed (`decide`: its records read, decided
 * and written in one store transaction) and its effects executed after the commit, in order (`run`). Chain calls
 * leave here through the nonce lane; a finishing call is sent only while no tx is in flight for its id and its
 * record still wants it (`decideSend`), and its result is decided too (`decideSent`). Steps never call each other:
 * what one wants of another is an effect.
 */
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { completeCall, failCall, resumeCall } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import type { FillDetails } from './details.ts';
import type { ChainEffect, Decision, Effect } from './effects.ts';
import { errorText } from '../internal/errors.ts';
import { heartbeatView } from './expiry.ts';
import { decideSend, decideSent } from './finish.ts';
import { commit } from './records.ts';
import type { Send } from './send.ts';

/** Commits a decision over the records of some ids, then runs its effects. */
export type Decide = (
  ids: readonly string[],
  decide: (records: ReadonlyMap<string, Inflight>) => Decision,
) => Promise<void>;

export interface EffectsRunner {
  decide: Decide;
  /** Runs `effects` in order; a failing effect stops the rest and throws. */
  run(effects: readonly Effect[]): Promise<void>;
}

/** What the runner needs of the steps that are not decisions (chain reads, the dispatch schedule). */
export interface RunnerDeps {
  send: Send;
  fillDetails: FillDetails;
  /** Reads the chain for `ids` without a tx in flight, repairs, and returns what follows (`recheck.ts`). */
  recheck(ids: string[], why: string): Promise<Effect[]>;
  defer(id: string, delayMs: number): void;
  forgetDispatch(id: string): void;
}

/** The runner over the context's store, tracker, executor and log. */
export function createEffectsRunner(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'now' | 'clock' | 'tracker' | 'executor' | 'log' | 'metrics'>,
  deps: RunnerDeps,
): EffectsRunner {
  const { opts, store, now, clock, tracker, executor, log, metrics } = ctx;

  const decide: Decide = async (ids, decider) => await run((await commit(store, ids, decider)).effects);

  async function call(e: ChainEffect): Promise<void> {
    // `send` marks the id before its first await, so whoever comes second sees the first one's tx in flight.
    if (tracker.has(e.id)) return;
    const facts = { nowMs: now(), nowS: clock.nowS(), hb: heartbeatView(ctx, e.id) };
    // Decided on the committed record (held in memory) with no await before the send marks the id: a second path
    // reaching the record meanwhile must find the tx in flight. A record not sent to is decided again, committed.
    if (!decideSend(e, store.get(inflightKey(e.id), InflightSchema), facts).send) {
      await decide([e.id], (rs) => decideSend(e, rs.get(e.id), facts));
      return;
    }
    const c =
      e.kind === 'complete'
        ? completeCall(opts.taskQueue, e.id, e.resultRef)
        : e.kind === 'fail'
          ? failCall(opts.taskQueue, e.id, e.reason)
          : resumeCall(opts.workflowEngine, e.id, e.workflowInstance);
    const res = await deps.send(c, true);
    await decide([e.id], (rs) => decideSent(e, rs.get(e.id), res, now()));
  }

  async function one(e: Effect): Promise<void> {
    switch (e.kind) {
      case 'complete':
      case 'fail':
      case 'resume':
        return await call(e);
      case 'recheck':
        return await run(await deps.recheck(e.ids, e.why));
      case 'fillDetails':
        if (!e.tolerant) return await deps.fillDetails(e.ids);
        return await deps.fillDetails(e.ids).catch((err: unknown) =>
          log.warn('reading claimed activities failed; the confirmation or the re-check reads them', {
            activity_ids: e.ids.join(','),
            error: errorText(err),
          }),
        );
      case 'cancel':
        return executor.cancel(e.id, e.reason);
      case 'ack':
        return executor.ackCompletion({
          activity_id: e.id,
          attempt: e.attempt,
          accepted: e.accepted,
          ...(e.code ? { code: e.code } : {}),
          ...(e.reason ? { reason: e.reason } : {}),
        });
      case 'defer':
        return deps.defer(e.id, e.delayMs);
      case 'ended':
        metrics.activities.inc({ outcome: e.outcome });
        if (e.outcome === 'completed' || e.outcome === 'failed')
          metrics.completionsSettled.inc({ kind: e.outcome === 'completed' ? 'complete' : 'fail' });
        if (!e.quiet)
          log.info(`activity ${e.outcome}`, { activity_id: e.id, ...(e.reason ? { reason: e.reason } : {}) });
        return;
      case 'forget':
        if (e.what === 'all') tracker.forget(e.id);
        else if (e.what === 'heartbeat') tracker.heartbeats.forget(e.id);
        else deps.forgetDispatch(e.id);
        return;
      case 'release':
        return tracker.release(e.txKind, e.ids, e.nonce);
      case 'track':
        return tracker.restore(e.txKind, e.ids, e.nonce);
      case 'heartbeatMined':
        return tracker.heartbeats.mined(e.ids, e.nonce, e.atS);
      case 'heartbeatReorged':
        return tracker.heartbeats.reorged(e.ids, e.nonce);
      case 'log':
        return log[e.level](e.message, e.fields);
    }
  }

  async function run(effects: readonly Effect[]): Promise<void> {
    for (const e of effects) await one(e);
  }

  return { decide, run };
}
