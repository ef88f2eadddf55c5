/**
 * Finishing an activity: sending its complete or fail, then the workflow's resume, and ending the record
 * (`inflight:{id}` → `done:{id}`). Each send is skipped while a tx is already in flight for the id: two paths may
 * reach a record at once (the executor's completion and a re-drive from chain facts read just before it), and the
 * second would send the complete a second time, to be reverted on chain.
 */
import { claimJobKey, doneKey, inflightKey } from '../store/keys.ts';
import type { Done, DoneOutcome, Inflight } from '../store/records.ts';
import { InflightSchema } from '../store/records.ts';
import type { StoreTx } from '../store/store.ts';
import { completeCall, failCall, resumeCall } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import { expiredNow } from './expiry.ts';
import type { Send } from './send.ts';
import { EXECUTING_STATES } from './transitions.ts';

/** Re-checks `ids` against the chain (see `recheck.ts`). */
export type Recheck = (ids: string[], why: string) => Promise<void>;

export interface Finish {
  /** Ends the record as `outcome` in one store transaction; cancels it at the executor if it held it. */
  finish(id: string, outcome: DoneOutcome, extra?: Partial<Done>, reason?: string): Promise<void>;
  /** Sends the complete (`completing`) or fail (`failing`) of `r`, unless one is in flight or it expired. */
  submitFinish(r: Inflight): Promise<void>;
  /** Sends the workflow's resume after a landed complete, or ends the record when there is nothing to resume. */
  submitResume(r: Inflight): Promise<void>;
}

/** Writes `done:{id}` and deletes the id's inflight record and claim job, inside `tx`; returns the inflight record. */
export function finishIn(
  tx: StoreTx,
  id: string,
  outcome: DoneOutcome,
  atMs: number,
  extra: Partial<Done> = {},
): Inflight | undefined {
  const r = tx.get(inflightKey(id), InflightSchema);
  const done: Done = {
    activity_id: id,
    outcome,
    finished_at_ms: atMs,
    ...(r?.queue_name ? { queue_name: r.queue_name } : {}),
    ...(r?.workflow_instance ? { workflow_instance: r.workflow_instance } : {}),
    ...(r?.activity_type ? { activity_type: r.activity_type } : {}),
    ...extra,
  };
  tx.put(doneKey(id), done);
  tx.del(inflightKey(id));
  tx.del(claimJobKey(id));
  return r;
}

/** The finishing step; `recheck` is called when the chain would refuse the complete or fail. */
export function createFinish(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'now' | 'clock' | 'tracker' | 'executor' | 'log' | 'metrics'>,
  deps: { send: Send; recheck: Recheck; forgetDispatch: (id: string) => void },
): Finish {
  const { opts, store, now, tracker, executor, log, metrics } = ctx;
  const { send } = deps;

  async function finish(id: string, outcome: DoneOutcome, extra: Partial<Done> = {}, reason = ''): Promise<void> {
    const r = await store.transact((tx) => finishIn(tx, id, outcome, now(), extra));
    metrics.activities.inc({ outcome });
    if (outcome === 'completed' || outcome === 'failed')
      metrics.completionsSettled.inc({ kind: outcome === 'completed' ? 'complete' : 'fail' });
    log.info(`activity ${outcome}`, { activity_id: id, ...(reason ? { reason } : {}) });
    if (r && EXECUTING_STATES.has(r.state)) executor.cancel(id, outcome);
    tracker.forget(id);
    deps.forgetDispatch(id);
  }

  async function submitFinish(r: Inflight): Promise<void> {
    // `send` marks the id before its first await, so whoever comes second sees the first one's tx in flight.
    if (tracker.has(r.activity_id)) return;
    if (expiredNow(ctx, r)) {
      await finish(r.activity_id, 'expired', {}, 'expired before its result could be written: nothing sent');
      return;
    }
    const call =
      r.state === 'completing'
        ? completeCall(opts.taskQueue, r.activity_id, r.result_ref ?? '')
        : failCall(opts.taskQueue, r.activity_id, r.fail_reason ?? 'failed');
    const res = await send(call, true);
    if (res.ok) log.info(`${call.kind} sent`, { activity_id: r.activity_id, nonce: res.nonce, tx_hash: res.hash });
    else if (res.stage === 'simulate' || res.stage === 'estimate') {
      log.warn(`${call.kind} would revert; checking the chain`, {
        activity_id: r.activity_id,
        reason: res.revert?.message ?? res.error.message,
      });
      await deps.recheck([r.activity_id], `${call.kind} simulation reverted`);
    } else log.warn(`${call.kind} not sent; will retry`, { activity_id: r.activity_id, error: res.error.message });
  }

  async function submitResume(r: Inflight): Promise<void> {
    if (tracker.has(r.activity_id)) return; // a resume (or the complete before it) already in flight
    if (!r.workflow_instance || r.workflow_instance === '0') {
      await finish(r.activity_id, 'completed', { result_ref: r.result_ref ?? '', resumed: true });
      return;
    }
    const res = await send(resumeCall(opts.workflowEngine, r.activity_id, r.workflow_instance), true);
    if (res.ok)
      log.info('resume sent', { activity_id: r.activity_id, workflow_instance: r.workflow_instance, nonce: res.nonce });
    else if (res.stage === 'simulate' || res.stage === 'estimate') {
      // Someone resumed it already (StepNotCompleted for the next step / WorkflowFinished): nothing left to do.
      await finish(
        r.activity_id,
        'completed',
        { result_ref: r.result_ref ?? '', resumed: true },
        `resume not needed: ${res.revert?.name ?? res.error.message}`,
      );
    } else log.warn('resume not sent; will retry', { activity_id: r.activity_id, error: res.error.message });
  }

  return { finish, submitFinish, submitResume };
}
