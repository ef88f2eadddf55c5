/**
 * The activity lifecycle as one table. An activity we hold lives in `inflight:{id}` in one of these states;
 * it leaves by becoming `done:{id}` (any state may end: completed, failed, lost, expired, finished elsewhere)
 * or, only from `claiming`, by going back to `claim_job:{id}` (our claim never landed and the activity is
 * still pending on chain).
 *
 *   claim_job ─claim tx─▶ claiming ─confirmed─▶ claimed ─dispatch─▶ assigned ─progress─▶ running
 *                                                  ▲  ◀─re-offer (executor lost it / retryable failure)─┘
 *   assigned|running ─Completion ok─▶ completing ─confirmed─▶ resuming ─confirmed─▶ done(completed)
 *                    └─Completion failed─▶ failing ─confirmed─▶ done(failed)
 * Heartbeats are sent for claimed, assigned, running, completing and failing (until the finishing tx mines).
 */
import type { InflightState } from '../store/records.ts';

export const TRANSITIONS: Readonly<Record<InflightState, readonly InflightState[]>> = {
  claiming: ['claimed'],
  claimed: ['assigned', 'completing', 'failing'],
  assigned: ['running', 'claimed', 'completing', 'failing'],
  running: ['claimed', 'completing', 'failing'],
  completing: ['resuming', 'claimed'],
  failing: ['claimed'],
  resuming: [],
};

/** States whose on-chain activity must be kept alive with heartbeats. */
export const HEARTBEAT_STATES: ReadonlySet<InflightState> = new Set([
  'claimed',
  'assigned',
  'running',
  'completing',
  'failing',
]);

/** States whose finishing tx (complete, fail, resume) is ours to send. */
export const FINISHING_STATES: ReadonlySet<InflightState> = new Set(['completing', 'failing', 'resuming']);

/** States in which the executor holds the task. */
export const EXECUTING_STATES: ReadonlySet<InflightState> = new Set(['assigned', 'running']);

/** States whose complete or fail tx is ours to send and not on chain yet. */
export const FINISH_TX_STATES: ReadonlySet<InflightState> = new Set(['completing', 'failing']);

/** States in which the executor may hold the task (a lost one is back in `claimed`): a Completion can apply. */
export const COMPLETABLE_STATES: ReadonlySet<InflightState> = new Set(['claimed', 'assigned', 'running']);

/** Whether `transitions` allows `from` → `to`. */
export function canTransition(from: InflightState, to: InflightState): boolean {
  return TRANSITIONS[from].includes(to);
}
