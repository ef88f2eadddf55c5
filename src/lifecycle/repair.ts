/**
 * `planRepair`: what the supervisor must write so that the local records of one activity agree with the chain.
 * PURE (no I/O, no clock: `ctx.nowMs` is the only time). The store is a cache of chain truth: when they disagree
 * about who holds an activity or how it ended, the chain wins; local state that is merely *ahead* of the chain
 * (a claim or finish transaction in flight) is left to its owner.
 *
 * Rules, in order (ours = fact.worker is ctx.wallet; "local" = claim_job / inflight / done of this id):
 *
 *  R0  unknown on chain (status None; e.g. the enqueue was reorged away): drop a claim_job; leave inflight and
 *      done alone (a claim of a missing activity cannot confirm; if the enqueue comes back, so does the truth).
 *  R1  Pending, not expired (claimable): the chain holds no claim of ours.
 *      a) inflight `claiming`, or a claim tx of ours still open in the lane (`local.claimInLane`: the tx manager
 *         re-mines a reorged claim) → none: the claim path's business.
 *      b) inflight in any other state: we held it, and the claim that gave it to us is gone (reorged away, sent by
 *         a life whose lane records were wiped, its nonce filled) → back to the claim path: claim job, inflight
 *         and any done deleted. Heartbeats and finishing calls would only be skipped or reverted on chain.
 *      c) no inflight, a local done: the fact it recorded vanished (a completion, a claim by someone else, an
 *         expiry seen before a reorg) → claim job, done deleted.
 *  R2  Pending, expired: it can never be claimed → drop a claim_job; inflight (claiming) → done `expired`.
 *  R3  Claimed by us, live (not expired):
 *      a) no inflight → rebuild inflight `claimed` from the fact (heartbeats resume, the executor gets it again);
 *         if a local done says otherwise (completed/failed whose tx never landed, lost/expired) the chain wins:
 *         done completed with a result → rebuild `completing` (result kept, the complete is re-sent); done failed
 *         → rebuild `failing`; any other done → rebuild `claimed`. The done is deleted.
 *      b) inflight `claiming` → the claim is confirmed: rebuild as `claimed` (keeps created_at/dispatch count).
 *      c) inflight `resuming` (we thought it completed; chain says not) → rebuild `completing` with its
 *         result_ref, or `claimed` without one.
 *      d) inflight claimed/assigned/running/completing/failing → none (just drop a stray claim_job).
 *  R4  Claimed by us, expired: nothing can be sent any more → done `expired` (inflight, claim_job deleted).
 *  R5  Claimed by someone else: our claim lost. Local claim_job/inflight (any state) → done `lost`. No local
 *      state → none. A local done other than lost/finished_elsewhere → corrected to `lost`.
 *  R6  Completed by us:
 *      a) the workflow still waits on this activity (`workflowResumedPastStep === false`) and ctx.resumeWorkflows
 *         (default true) → inflight `resuming` (result_ref from chain); the lifecycle sends resumeWorkflow.
 *         An inflight already `resuming` → none.
 *      b) otherwise → done `completed`, result_ref from chain, `resumed` = true when the workflow moved past the
 *         step or there is no workflow, false when resuming is someone else's job (resumeWorkflows: false) or
 *         impossible; inflight and claim_job deleted.
 *  R7  Failed by us → done `failed` (reason = chain resultRef); inflight and claim_job deleted.
 *  R8  Completed/Failed by someone else → with local claim_job/inflight: done `finished_elsewhere`. No local
 *      state → none. A local done other than lost/finished_elsewhere → corrected to `finished_elsewhere`.
 *
 * Idempotence: every action leads to a local state for which `planRepair` with the same fact returns
 * `{ type: 'none' }` (checked by property tests). A done that already says what the chain says is left alone
 * (only outcome / resumed / result_ref are compared, never times).
 */
import { ActivityStatus } from '../chain/abi.ts';
import type { ClaimJob, Done, DoneOutcome, Inflight, InflightState } from '../store/records.ts';
import { claimJobKey, doneKey, inflightKey } from '../store/keys.ts';
import type { Store, StoreTx } from '../store/store.ts';
import { ClaimJobSchema, DoneSchema, InflightSchema } from '../store/records.ts';
import type { ActivityFact } from '../chain/facts.ts';

export interface LocalRecords {
  claimJob?: ClaimJob;
  inflight?: Inflight;
  done?: Done;
  /** A claim tx of ours naming this id is open in the lane (pending or mined, not confirmed). */
  claimInLane?: boolean;
}

export interface RepairContext {
  wallet: string;
  nowMs: number;
  queueName: string;
  /** Whether this worker resumes workflows of activities it completed; default true. */
  resumeWorkflows?: boolean;
}

/** The rule that produced an action (for logs and metrics). */
export type RepairRule =
  | 'R0'
  | 'R1b'
  | 'R1c'
  | 'R2'
  | 'R3a'
  | 'R3b'
  | 'R3c'
  | 'R3d'
  | 'R4'
  | 'R5'
  | 'R6a'
  | 'R6b'
  | 'R7'
  | 'R8';

export type RepairAction =
  | { type: 'none' }
  /** Delete `claim_job:{id}` only. */
  | { type: 'dropClaimJob'; rule: RepairRule; reason: string }
  /** Put `inflight:{id}` (replacing any), optionally deleting the claim job and a contradicting done. */
  | {
      type: 'rebuildInflight';
      rule: RepairRule;
      reason: string;
      inflight: Inflight;
      deleteClaimJob: boolean;
      deleteDone: boolean;
    }
  /** Put `claim_job:{id}` (keeping one already there), deleting inflight and done: claim it again. */
  | {
      type: 'requeue';
      rule: RepairRule;
      reason: string;
      claimJob: ClaimJob;
      deleteInflight: boolean;
      deleteDone: boolean;
    }
  /** Put `done:{id}` (replacing any), optionally deleting inflight and claim job. */
  | {
      type: 'markDone';
      rule: RepairRule;
      reason: string;
      done: Done;
      deleteInflight: boolean;
      deleteClaimJob: boolean;
    };

const NONE: RepairAction = { type: 'none' };

export function planRepair(fact: ActivityFact, local: LocalRecords, ctx: RepairContext): RepairAction {
  const wallet = ctx.wallet.toLowerCase();
  const ours = fact.worker.toLowerCase() === wallet;
  const { claimJob, inflight, done } = local;
  const hasLocalWork = claimJob !== undefined || inflight !== undefined;

  const markDone = (
    rule: RepairRule,
    reason: string,
    outcome: DoneOutcome,
    extra: { result_ref?: string; reason?: string; resumed?: boolean; finished_at_ms?: number } = {},
  ): RepairAction => {
    const next = buildDone(fact, ctx, outcome, extra, done);
    if (done && sameDone(done, next) && !hasLocalWork) return NONE;
    if (done && sameDone(done, next)) {
      return {
        type: 'markDone',
        rule,
        reason,
        done,
        deleteInflight: inflight !== undefined,
        deleteClaimJob: claimJob !== undefined,
      };
    }
    return {
      type: 'markDone',
      rule,
      reason,
      done: next,
      deleteInflight: inflight !== undefined,
      deleteClaimJob: claimJob !== undefined,
    };
  };
  const rebuild = (
    rule: RepairRule,
    reason: string,
    state: InflightState,
    resultRef?: string,
    failReason?: string,
  ): RepairAction => ({
    type: 'rebuildInflight',
    rule,
    reason,
    inflight: buildInflight(fact, ctx, state, inflight, resultRef, failReason),
    deleteClaimJob: claimJob !== undefined,
    deleteDone: done !== undefined,
  });
  const dropStrayClaimJob = (rule: RepairRule): RepairAction =>
    claimJob ? { type: 'dropClaimJob', rule, reason: 'claim job of an activity already held' } : NONE;

  // R0
  if (!fact.exists || fact.status === ActivityStatus.None) {
    return claimJob ? { type: 'dropClaimJob', rule: 'R0', reason: 'activity unknown on chain' } : NONE;
  }

  if (fact.status === ActivityStatus.Pending) {
    if (!fact.isExpired) {
      if (inflight?.state === 'claiming' || local.claimInLane) return NONE; // R1a
      const requeue = (rule: RepairRule, reason: string): RepairAction => ({
        type: 'requeue',
        rule,
        reason,
        claimJob: claimJob ?? {
          activity_id: fact.activityId,
          queue_name: fact.queue || inflight?.queue_name || ctx.queueName,
          created_at_ms: inflight?.created_at_ms ?? ctx.nowMs,
          source: 'reconcile',
        },
        deleteInflight: inflight !== undefined,
        deleteDone: done !== undefined,
      });
      if (inflight) return requeue('R1b', `held as ${inflight.state} but pending on chain: our claim is gone`);
      if (done) return requeue('R1c', `done ${done.outcome} but pending on chain: the fact it recorded vanished`);
      return NONE;
    }
    // R2
    if (inflight)
      return markDone('R2', 'expired before our claim landed', 'expired', { finished_at_ms: fact.expiresAtS * 1000 });
    return claimJob ? { type: 'dropClaimJob', rule: 'R2', reason: 'expired while pending' } : NONE;
  }

  if (fact.status === ActivityStatus.Claimed) {
    if (!ours) {
      // R5
      if (hasLocalWork)
        return markDone('R5', `claimed by ${fact.worker}`, 'lost', { reason: `claimed by ${fact.worker}` });
      if (done && done.outcome !== 'lost' && done.outcome !== 'finished_elsewhere') {
        return markDone('R5', `claimed by ${fact.worker}`, 'lost', { reason: `claimed by ${fact.worker}` });
      }
      return NONE;
    }
    if (fact.isExpired) {
      // R4
      if (!hasLocalWork && done?.outcome === 'expired') return NONE;
      return markDone('R4', 'our claim expired on chain', 'expired', { finished_at_ms: expiryMs(fact) });
    }
    // R3: ours and live.
    if (!inflight) {
      if (done?.outcome === 'completed' && done.result_ref !== undefined) {
        return rebuild(
          'R3a',
          'local done completed but chain still claimed: re-send complete',
          'completing',
          done.result_ref,
        );
      }
      if (done?.outcome === 'failed') {
        return rebuild(
          'R3a',
          'local done failed but chain still claimed: re-send fail',
          'failing',
          undefined,
          done.reason ?? 'failed',
        );
      }
      return rebuild(
        'R3a',
        done ? `local done ${done.outcome} but chain still claimed by us` : 'claimed by us, no local record',
        'claimed',
      );
    }
    if (inflight.state === 'claiming') return rebuild('R3b', 'claim confirmed on chain', 'claimed');
    if (inflight.state === 'resuming') {
      return inflight.result_ref !== undefined
        ? rebuild('R3c', 'local resuming but chain not completed: re-send complete', 'completing', inflight.result_ref)
        : rebuild('R3c', 'local resuming but chain not completed', 'claimed');
    }
    // R3d (a stray done next to a live inflight is dropped with the inflight kept).
    if (done)
      return rebuild('R3d', 'done next to a live inflight', inflight.state, inflight.result_ref, inflight.fail_reason);
    return dropStrayClaimJob('R3d');
  }

  // Finished (Completed or Failed).
  if (!ours) {
    // R8
    const reason = `${fact.status === ActivityStatus.Completed ? 'completed' : 'failed'} by ${fact.worker}`;
    if (hasLocalWork) return markDone('R8', reason, 'finished_elsewhere', { reason });
    if (done && done.outcome !== 'lost' && done.outcome !== 'finished_elsewhere') {
      return markDone('R8', reason, 'finished_elsewhere', { reason });
    }
    return NONE;
  }
  const finishedMs = fact.finishedAtS > 0 ? fact.finishedAtS * 1000 : ctx.nowMs;
  if (fact.status === ActivityStatus.Failed) {
    // R7
    return markDone('R7', 'failed by us on chain', 'failed', { reason: fact.resultRef, finished_at_ms: finishedMs });
  }
  // R6: completed by us.
  const hasWorkflow = fact.workflowInstance !== '0';
  const resumeWanted = ctx.resumeWorkflows ?? true;
  if (hasWorkflow && fact.workflowResumedPastStep === false && resumeWanted) {
    // R6a
    if (inflight?.state === 'resuming' && !done) return dropStrayClaimJob('R6a');
    return rebuild('R6a', 'completed by us, workflow waits for resume', 'resuming', fact.resultRef);
  }
  // R6b
  const resumed = !hasWorkflow || fact.workflowResumedPastStep === true;
  return markDone('R6b', 'completed by us on chain', 'completed', {
    result_ref: fact.resultRef,
    resumed,
    finished_at_ms: finishedMs,
  });
}

function expiryMs(fact: ActivityFact): number {
  const hb = fact.lastHeartbeatAtS + fact.heartbeatTimeoutS;
  return Math.min(fact.expiresAtS, hb > 0 ? hb : fact.expiresAtS) * 1000;
}

function buildDone(
  fact: ActivityFact,
  ctx: RepairContext,
  outcome: DoneOutcome,
  extra: { result_ref?: string; reason?: string; resumed?: boolean; finished_at_ms?: number },
  prev: Done | undefined,
): Done {
  const d: Done = {
    activity_id: fact.activityId,
    outcome,
    queue_name: fact.queue || ctx.queueName,
    activity_type: fact.activityType,
    finished_at_ms: extra.finished_at_ms ?? prev?.finished_at_ms ?? ctx.nowMs,
  };
  if (fact.workflowInstance !== '0') d.workflow_instance = fact.workflowInstance;
  if (extra.result_ref !== undefined) d.result_ref = extra.result_ref;
  if (extra.reason !== undefined) d.reason = extra.reason;
  if (extra.resumed !== undefined) d.resumed = extra.resumed;
  return d;
}

/** Whether two dones say the same thing (times and descriptive fields aside). */
function sameDone(a: Done, b: Done): boolean {
  return (
    a.outcome === b.outcome &&
    (a.resumed ?? null) === (b.resumed ?? null) &&
    (a.result_ref ?? null) === (b.result_ref ?? null)
  );
}

function buildInflight(
  fact: ActivityFact,
  ctx: RepairContext,
  state: InflightState,
  prev: Inflight | undefined,
  resultRef: string | undefined,
  failReason: string | undefined,
): Inflight {
  const i: Inflight = {
    activity_id: fact.activityId,
    state,
    queue_name: fact.queue || prev?.queue_name || ctx.queueName,
    step_index: fact.stepIndex,
    activity_type: fact.activityType,
    input_ref: fact.inputRef,
    expires_at_s: fact.expiresAtS,
    heartbeat_timeout_s: fact.heartbeatTimeoutS,
    last_heartbeat_s: fact.lastHeartbeatAtS,
    dispatch_attempts: prev?.dispatch_attempts ?? 0,
    created_at_ms: prev?.created_at_ms ?? ctx.nowMs,
    updated_at_ms: ctx.nowMs,
  };
  if (fact.workflowInstance !== '0') i.workflow_instance = fact.workflowInstance;
  if (resultRef !== undefined) i.result_ref = resultRef;
  if (failReason !== undefined) i.fail_reason = failReason;
  return i;
}

/** Reads the local records of one activity inside a transaction. */
export function readLocal(tx: Pick<StoreTx, 'get'> | Pick<Store, 'get'>, activityId: string): LocalRecords {
  const out: LocalRecords = {};
  const c = tx.get(claimJobKey(activityId), ClaimJobSchema);
  const i = tx.get(inflightKey(activityId), InflightSchema);
  const d = tx.get(doneKey(activityId), DoneSchema);
  if (c) out.claimJob = c;
  if (i) out.inflight = i;
  if (d) out.done = d;
  return out;
}

/** Applies an action's writes inside the caller's transaction (the supervisor's `store.transact`). */
export function applyRepair(tx: Pick<StoreTx, 'put' | 'del'>, activityId: string, action: RepairAction): void {
  switch (action.type) {
    case 'none':
      return;
    case 'dropClaimJob':
      tx.del(claimJobKey(activityId));
      return;
    case 'rebuildInflight':
      tx.put(inflightKey(activityId), action.inflight);
      if (action.deleteClaimJob) tx.del(claimJobKey(activityId));
      if (action.deleteDone) tx.del(doneKey(activityId));
      return;
    case 'requeue':
      tx.put(claimJobKey(activityId), action.claimJob);
      if (action.deleteInflight) tx.del(inflightKey(activityId));
      if (action.deleteDone) tx.del(doneKey(activityId));
      return;
    case 'markDone':
      tx.put(doneKey(activityId), action.done);
      if (action.deleteInflight) tx.del(inflightKey(activityId));
      if (action.deleteClaimJob) tx.del(claimJobKey(activityId));
      return;
  }
}

/** `applyRepair` on plain records (tests, dry runs): the local state after the action. */
export function applyToLocal(local: LocalRecords, action: RepairAction): LocalRecords {
  const next: LocalRecords = { ...local };
  switch (action.type) {
    case 'none':
      break;
    case 'dropClaimJob':
      delete next.claimJob;
      break;
    case 'rebuildInflight':
      next.inflight = action.inflight;
      if (action.deleteClaimJob) delete next.claimJob;
      if (action.deleteDone) delete next.done;
      break;
    case 'requeue':
      next.claimJob = action.claimJob;
      if (action.deleteInflight) delete next.inflight;
      if (action.deleteDone) delete next.done;
      break;
    case 'markDone':
      next.done = action.done;
      if (action.deleteInflight) delete next.inflight;
      if (action.deleteClaimJob) delete next.claimJob;
      break;
  }
  return next;
}

/** Plans and applies repairs for a batch of facts in ONE transaction; returns the non-trivial actions. */
export async function reconcileFacts(
  store: Store,
  facts: ActivityFact[],
  ctx: RepairContext,
  hooks: {
    /** The time of the decision, read when the transaction runs (else `ctx.nowMs`). */
    now?: () => number;
    /** Each action as it is decided, inside the transaction (before its commit). */
    planned?: (activityId: string, action: RepairAction) => void;
    /** An action to leave unapplied (e.g. one decided on a fact that may be stale); it is not returned. */
    hold?: (activityId: string, action: RepairAction) => boolean;
    /** Whether a claim tx of ours naming the id is open in the lane (rule R1a). */
    claimInLane?: (activityId: string) => boolean;
  } = {},
): Promise<Array<{ activityId: string; action: RepairAction }>> {
  return await store.transact((tx) => {
    const out: Array<{ activityId: string; action: RepairAction }> = [];
    const at = hooks.now ? { ...ctx, nowMs: hooks.now() } : ctx;
    for (const f of facts) {
      const local = readLocal(tx, f.activityId);
      // The lane is read only where rule R1 needs it.
      const claimable = f.exists && f.status === ActivityStatus.Pending && !f.isExpired;
      const held = local.done !== undefined || (local.inflight !== undefined && local.inflight.state !== 'claiming');
      if (claimable && held && hooks.claimInLane?.(f.activityId)) local.claimInLane = true;
      const action = planRepair(f, local, at);
      if (action.type === 'none' || hooks.hold?.(f.activityId, action)) continue;
      hooks.planned?.(f.activityId, action);
      applyRepair(tx, f.activityId, action);
      out.push({ activityId: f.activityId, action });
    }
    return out;
  });
}
