/**
 * Finishing an activity, decided: whether a complete, fail or resume may be sent for the record as it is now
 * (`decideSend`), what its submit's result leads to (`decideSent`), and the resume that follows a landed complete
 * (`decideResume`). PURE: the runner (`runner.ts`) reads the record, commits these decisions and sends the call.
 * A call is sent only while the record is in the state it finishes, and never while a tx is in flight for the id
 * (the runner's guard): two paths may reach a record at once, and the second send would be reverted on chain.
 */
import type { Inflight } from '../store/records.ts';
import type { SubmitResult } from '../txmgr/types.ts';
import { type ChainEffect, type Decision, effects, endDecision, NOTHING } from './effects.ts';
import { type HeartbeatView, isExpired } from './expiry.ts';

/** Re-checks `ids` against the chain: runs a `recheck` effect (for steps that are not deciders yet). */
export type Recheck = (ids: string[], why: string) => Promise<void>;

/** What a send decision reads besides the record. */
export interface SendFacts {
  nowMs: number;
  /** Chain time, seconds. */
  nowS: number;
  /** The tracker's view of the id's heartbeats. */
  hb: HeartbeatView;
}

/** The state a finishing call needs its record in. */
const NEEDS = { complete: 'completing', fail: 'failing', resume: 'resuming' } as const;

/**
 * Before `call` is sent for `r`: `send` when it still applies; a complete or fail of an activity that expired is
 * not sent, the record ends `expired` instead.
 */
export function decideSend(call: ChainEffect, r: Inflight | undefined, f: SendFacts): Decision & { send: boolean } {
  if (r?.state !== NEEDS[call.kind]) return { ...NOTHING, send: false };
  if (call.kind !== 'resume' && isExpired(r, f.nowS, f.hb))
    return {
      ...endDecision(call.id, r, 'expired', f.nowMs, {}, 'expired before its result could be written: nothing sent'),
      send: false,
    };
  return { ...NOTHING, send: true };
}

/** After `call`'s submit answered `res`: logged; a call that would revert sends the id to the chain re-check, or
 * (a resume) ends the record: someone resumed the workflow already. */
export function decideSent(call: ChainEffect, r: Inflight | undefined, res: SubmitResult, nowMs: number): Decision {
  const id = call.id;
  if (res.ok) {
    const fields =
      call.kind === 'resume'
        ? { activity_id: id, workflow_instance: call.workflowInstance, nonce: res.nonce }
        : { activity_id: id, nonce: res.nonce, tx_hash: res.hash };
    return effects({ kind: 'log', level: 'info', message: `${call.kind} sent`, fields });
  }
  if (res.stage === 'simulate' || res.stage === 'estimate') {
    if (call.kind === 'resume')
      // StepNotCompleted for the next step / WorkflowFinished: nothing left to do.
      return endDecision(
        id,
        r,
        'completed',
        nowMs,
        { result_ref: call.resultRef, resumed: true },
        `resume not needed: ${res.revert?.name ?? res.error.message}`,
      );
    return effects(
      {
        kind: 'log',
        level: 'warn',
        message: `${call.kind} would revert; checking the chain`,
        fields: { activity_id: id, reason: res.revert?.message ?? res.error.message },
      },
      { kind: 'recheck', ids: [id], why: `${call.kind} simulation reverted` },
    );
  }
  return effects({
    kind: 'log',
    level: 'warn',
    message: `${call.kind} not sent; will retry`,
    fields: { activity_id: id, error: res.error.message },
  });
}

/**
 * The resume owed by `r` (its complete landed): the resume call, or — no workflow to resume — the record ends
 * `completed`. `r` is the record as it is once `resuming` (its write is the caller's).
 */
export function decideResume(r: Inflight, nowMs: number): Decision {
  if (!r.workflow_instance || r.workflow_instance === '0')
    return endDecision(r.activity_id, r, 'completed', nowMs, { result_ref: r.result_ref ?? '', resumed: true });
  return effects({
    kind: 'resume',
    id: r.activity_id,
    workflowInstance: r.workflow_instance,
    resultRef: r.result_ref ?? '',
  });
}
