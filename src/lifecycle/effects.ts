/**
 * Decisions and effects: every lifecycle event is decided by a pure function from (records, event, facts) to a
 * `Decision` — the store writes to commit, in the same transaction that read the records, and the effects to run
 * after the commit, in order, by the one runner (`runner.ts`). Effects are data: a chain call, a re-check, an
 * executor message, a tracker note. Nothing here does I/O.
 */
import type { ClaimJob, Done, DoneOutcome, Inflight, TxKind } from '../store/records.ts';
import { EXECUTING_STATES } from './transitions.ts';

/** One change of an id's local records, applied inside the decision's store transaction. */
export type Write =
  /** `inflight:{id}` becomes `record`. */
  | { kind: 'put'; record: Inflight }
  /** `done:{id}` written, the inflight record and claim job deleted. */
  | { kind: 'end'; done: Done }
  /** Back to the claim path: the inflight record deleted, `claim_job:{id}` written. */
  | { kind: 'requeue'; job: ClaimJob };

/** A finishing chain call: complete, fail, or the workflow's resume. */
export type ChainEffect =
  | { kind: 'complete'; id: string; resultRef: string }
  | { kind: 'fail'; id: string; reason: string }
  | { kind: 'resume'; id: string; workflowInstance: string; resultRef: string };

/** What to do once a decision is committed. */
export type Effect =
  | ChainEffect
  /** Read the chain for `ids` (those without a tx in flight) and apply it with the repair rules. */
  | { kind: 'recheck'; ids: string[]; why: string }
  /** Read freshly claimed activities' details; `tolerant`: a failed read is logged, not thrown. */
  | { kind: 'fillDetails'; ids: string[]; tolerant?: boolean }
  /** Tell the executor to stop `id`. */
  | { kind: 'cancel'; id: string; reason: string }
  /** Answer a Completion. */
  | { kind: 'ack'; id: string; attempt: number; accepted: boolean; code?: string; reason?: string }
  /** Dispatch `id` again after `delayMs`. */
  | { kind: 'defer'; id: string; delayMs: number }
  /** The activity ended: counted in the metrics; logged as `activity {outcome}` unless `quiet`. */
  | { kind: 'ended'; id: string; outcome: DoneOutcome; reason: string; quiet?: boolean }
  /** Forget what is in memory of `id`: its txs and heartbeats (`all`) or only its heartbeats, and its dispatch. */
  | { kind: 'forget'; id: string; what: 'all' | 'heartbeat' | 'dispatch' }
  /** Tracker: the tx `nonce`'s outcome for `ids` is committed (they are no longer in flight for it). */
  | { kind: 'release'; txKind: TxKind; ids: string[]; nonce: number }
  /** Tracker: `ids` are in flight again for the tx `nonce` (it left its block). */
  | { kind: 'track'; txKind: TxKind; ids: string[]; nonce: number }
  /** Tracker: the heartbeat `nonce` was mined at chain time `atS` for `ids`. */
  | { kind: 'heartbeatMined'; ids: string[]; nonce: number; atS: number }
  /** Tracker: the heartbeat `nonce` left its block. */
  | { kind: 'heartbeatReorged'; ids: string[]; nonce: number }
  /** A line for the log. */
  | { kind: 'log'; level: 'debug' | 'info' | 'warn'; message: string; fields: Record<string, unknown> };

/** The writes to commit and the effects to run after. */
export interface Decision {
  writes: Write[];
  effects: Effect[];
}

export const NOTHING: Decision = Object.freeze({ writes: [], effects: [] }) as Decision;

/** Concatenates decisions, in order. */
export function merge(...ds: Decision[]): Decision {
  return { writes: ds.flatMap((d) => d.writes), effects: ds.flatMap((d) => d.effects) };
}

/** Only effects. */
export const effects = (...es: Effect[]): Decision => ({ writes: [], effects: es });

/**
 * Ends the record of `id` as `outcome` at `atMs` (`r` its inflight record, if any): the done record, and the
 * executor told to stop when it held the task.
 */
export function endDecision(
  id: string,
  r: Inflight | undefined,
  outcome: DoneOutcome,
  atMs: number,
  extra: Partial<Done> = {},
  reason = '',
): Decision {
  const done: Done = {
    activity_id: id,
    outcome,
    finished_at_ms: atMs,
    ...(r?.queue_name ? { queue_name: r.queue_name } : {}),
    ...(r?.workflow_instance ? { workflow_instance: r.workflow_instance } : {}),
    ...(r?.activity_type ? { activity_type: r.activity_type } : {}),
    ...extra,
  };
  return {
    writes: [{ kind: 'end', done }],
    effects: [
      ...(r && EXECUTING_STATES.has(r.state) ? [{ kind: 'cancel' as const, id, reason: outcome }] : []),
      { kind: 'ended', id, outcome, reason },
      { kind: 'forget', id, what: 'all' },
      { kind: 'forget', id, what: 'dispatch' },
    ],
  };
}

/** The chain call that finishes `r` (`completing` → complete, `failing` → fail), if it is in one of those states. */
export function finishCall(r: Inflight): ChainEffect | undefined {
  if (r.state === 'completing') return { kind: 'complete', id: r.activity_id, resultRef: r.result_ref ?? '' };
  if (r.state === 'failing') return { kind: 'fail', id: r.activity_id, reason: r.fail_reason ?? 'failed' };
  return undefined;
}

/** The effect that follows `r` entering its state: its finishing call, or a deferred re-dispatch for `claimed`. */
export function followUp(r: Inflight, retryDelayMs: number): Effect[] {
  if (r.state === 'claimed') return [{ kind: 'defer', id: r.activity_id, delayMs: retryDelayMs }];
  const call = finishCall(r);
  return call ? [call] : [];
}

/**
 * A run that ended without a result to write, decided: `next` (back to `claimed`, or `failing`) written, a warning
 * logged (`message` by where it went), then its follow-up: a deferred dispatch after `retryDelayMs`, or the fail call.
 */
export function rerunOrFail(
  next: Inflight,
  message: { claimed: string; failing: string },
  fields: Record<string, unknown>,
  retryDelayMs: number,
): Decision {
  return {
    writes: [{ kind: 'put', record: next }],
    effects: [
      { kind: 'log', level: 'warn', message: next.state === 'claimed' ? message.claimed : message.failing, fields },
      ...followUp(next, retryDelayMs),
    ],
  };
}
