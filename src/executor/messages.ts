/**
 * Messages between the supervisor (main thread) and the executor worker thread (the bridge), over a MessagePort.
 * Plain structured-cloneable objects; errors cross as `{ code, message, retryable }`.
 */
import type { WireError } from '../internal/errors.ts';
import type { StorageRefusalReason } from '../storage/refusal.ts';
import type { CompletionResult } from '../taskstream/types.ts';

export type { StorageRefusalReason } from '../storage/refusal.ts';

/** One activity to run, as the supervisor knows it. */
export interface TaskSpec {
  activity_id: string;
  activity_type: string;
  /** As on chain: `json:{...}` or `blob:<namespace>/<key>`. */
  input_ref: string;
  queue_name: string;
  workflow_instance?: string;
  /** Unix ms after which the result is useless (chain expiry). */
  deadline_unix_ms: number;
  /** The dispatch attempt, persisted in the store before the assignment is sent (1 = first dispatch). */
  attempt: number;
  /**
   * A re-offer of a task the executor still holds (its Resync listed it, e.g. after a wcp restart): the bridge
   * registers it and sends the assignment so the executor keeps its one run; it takes no new credit.
   */
  reoffer?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// supervisor → worker

export type ExecutorCommand =
  | { type: 'assign'; task: TaskSpec }
  | { type: 'cancel'; activity_id: string; reason: string }
  /**
   * The supervisor's verdict on a `completion` event, sent once the outcome is committed to the store (accepted)
   * or refused (not held, wrong attempt…): the bridge relays it to the executor as a CompletionAck.
   */
  | { type: 'ackCompletion'; activity_id: string; attempt: number; accepted: boolean; code?: string; reason?: string }
  /** Stop taking assignments; keep the stream until in-flight tasks complete (then `drained` is sent). */
  | { type: 'drain' }
  /** Close the stream and end the worker (tasks keep running in the executor; a later start resyncs). */
  | { type: 'stop' };

// ---------------------------------------------------------------------------------------------------------------
// worker → supervisor

/** Connection state of the bridge (see connection.ts for the transitions). */
export type BridgeState = 'connecting' | 'handshaking' | 'ready' | 'backoff' | 'stopped';

/** Why an assignment was refused. The supervisor keeps the task; `retryable` says whether to offer it again. */
export type AssignRejectReason =
  | 'not_connected' // retryable: no ready stream right now
  | 'no_credits' // retryable: executor or max_inflight full
  | 'draining' // retryable: the bridge is draining/stopping (offer it after restart)
  | 'storage_unavailable' // retryable: presigning input/output URLs failed transiently
  | 'storage_refused' // retryable: the storage service refuses the worker itself (wait for the operator's fix)
  | 'unsupported_type' // not retryable on this executor: its Capabilities do not list the type
  | 'duplicate' // not retryable: this activity id is already in flight
  | 'invalid_task' // not retryable: malformed id / input_ref / storage refused this activity's data
  | 'expired'; // not retryable: deadline_unix_ms already passed

/** How tasks the executor no longer lists were lost (see the `resync` event). */
export type LostCause = 'graceful' | 'crash';

export type ExecutorEvent =
  | {
      type: 'state';
      state: BridgeState;
      executor_id?: string;
      activity_types?: string[];
      /** Of `activity_types`, those that declare outputs: running them needs the storage service (presigned URLs). */
      storage_types?: string[];
      /**
       * Set while the bridge has a storage broker whose first answer is still awaited: claims of work that needs
       * storage wait for it (a start against a refusing service claims nothing).
       */
      storage_pending?: boolean;
      /** Human-readable cause of the change (e.g. why the stream dropped). */
      detail?: string;
      /** Set when the change was caused by an error (e.g. EXECUTOR_PROTOCOL on a version mismatch). */
      error?: WireError;
    }
  /**
   * How many more `assign`s the supervisor may send now: min(executor credits, max_inflight − in flight), net of
   * assignments the executor has not yet counted. `assigns_seen` is how many `assign` commands (re-offers not
   * counted) the bridge had received when it computed `available`: the supervisor may have
   * `available − (assigns it sent − assigns_seen)` outstanding, so a figure that crossed its assigns on the port
   * never makes it overshoot. The bridge sends no update for a drop the supervisor already counted (its own
   * assign); a refused assign is followed by the corrected figure.
   */
  | { type: 'credits'; available: number; assigns_seen?: number }
  /** The assignment was written to the stream. */
  | { type: 'accepted'; activity_id: string }
  | { type: 'assignRejected'; activity_id: string; reason: AssignRejectReason; retryable: boolean; detail?: string }
  | { type: 'progress'; activity_id: string; fraction: number; message: string }
  /**
   * A Completion the bridge validated (outputs included). `assigned_here` is false when this bridge did not assign
   * the task in its own life (an earlier wcp did; absent = true): the supervisor decides from its store. Every completion gets
   * an `ackCompletion` back.
   */
  | { type: 'completion'; activity_id: string; attempt: number; result: CompletionResult; assigned_here?: boolean }
  /**
   * A Completion the bridge refused (e.g. OUTPUT_INVALID: a ref outside `blob:<activity_id>/`, a declared output
   * missing, an object never uploaded); the executor was already told. The supervisor re-dispatches while
   * attempts remain, else fails the activity on chain with `reason`.
   */
  | { type: 'completionRejected'; activity_id: string; attempt: number; code: string; reason: string }
  /**
   * Whether the storage service answers as it should (presigning works); claims of work that needs storage, and
   * dispatches of such claimed work, wait while not. `refused` names why the service refuses the worker itself
   * (absent while it is merely unreachable).
   */
  | { type: 'storage'; available: boolean; refused?: StorageRefusalReason; detail?: string }
  /**
   * After a (re)connect: of the tasks the bridge had in flight, which the executor still holds and which it lost
   * (the supervisor re-offers the lost ones). Sent on every handshake that follows a previous connection or
   * that finds tasks in flight.
   */
  | {
      type: 'resync';
      running_activity_ids: string[];
      lost_activity_ids: string[];
      /**
       * How the executor's previous ready stream ended, which is how the lost ones were lost: `graceful` when the
       * executor closed it cleanly (gRPC status OK: it shut down on purpose), `crash` for any other end (an error
       * status, a dropped connection, no Pong). Absent when nothing was lost (or from an older bridge: a crash).
       */
      lost_cause?: LostCause;
      /** Every activity the executor's Resync listed (running, or finished with a Completion not yet acknowledged). */
      held_activity_ids: string[];
    }
  /** An executor message was refused (logged too); for metrics. */
  | { type: 'rejected'; reason: string; activity_id?: string }
  /** Draining finished: nothing in flight any more. */
  | { type: 'drained' }
  | { type: 'stopped' };

const SUPERVISOR_TYPES = new Set(['assign', 'cancel', 'ackCompletion', 'drain', 'stop']);

/** Structural check of a message received on the port (trusted sender, but a bug must not crash the worker). */
export function isExecutorCommand(m: unknown): m is ExecutorCommand {
  if (m === null || typeof m !== 'object') return false;
  const t = (m as { type?: unknown }).type;
  if (typeof t !== 'string' || !SUPERVISOR_TYPES.has(t)) return false;
  if (t === 'assign') {
    const task = (m as { task?: unknown }).task as Partial<TaskSpec> | undefined;
    return (
      task !== null &&
      typeof task === 'object' &&
      typeof task.activity_id === 'string' &&
      typeof task.activity_type === 'string' &&
      typeof task.input_ref === 'string' &&
      typeof task.queue_name === 'string' &&
      typeof task.deadline_unix_ms === 'number' &&
      typeof task.attempt === 'number' &&
      (task.workflow_instance === undefined || typeof task.workflow_instance === 'string')
    );
  }
  if (t === 'ackCompletion') {
    const a = m as { activity_id?: unknown; attempt?: unknown; accepted?: unknown };
    return typeof a.activity_id === 'string' && typeof a.attempt === 'number' && typeof a.accepted === 'boolean';
  }
  if (t === 'cancel') {
    const c = m as { activity_id?: unknown; reason?: unknown };
    return typeof c.activity_id === 'string' && typeof c.reason === 'string';
  }
  return true;
}
