/**
 * Offering tasks to the executor: an assignment is checked (id, input reference, duplicate, deadline, connection,
 * activity type, credits), reserved in the task table, given its presigned URLs, and written as a TaskAssignment.
 * Every offer is answered exactly once: `accepted`, `assignRejected`, or — when cancelled while being prepared —
 * a CANCELLED completion. Cancels of tasks already sent go to the executor.
 *
 * A re-offer (`reoffer: true`: a task the executor listed in its Resync) takes no credit and needs no URLs (the
 * executor keeps its one run; they are presigned when storage answers, for the case it no longer holds it); the
 * TaskAssignment tells the executor the attempt number to answer with. A re-offer of a task already on the stream
 * only updates that number; one whose Completion this bridge already took is refused as `duplicate` (its verdict
 * is on its way).
 */
import { errorText } from '../internal/errors.ts';
import { classifyStorageFailure } from '../storage/refusal.ts';
import type { Logger } from '../internal/logger.ts';
import { isActivityId, parseInputRef } from '../taskstream/refs.ts';
import type { OutputDecl } from '../taskstream/validate.ts';
import type { Acks } from './acks.ts';
import type { BridgeCompletions } from './completion.ts';
import type { Connection } from './connection.ts';
import type { Flow } from './credits.ts';
import type { BridgeEvents } from './events.ts';
import type { AssignRejectReason, TaskSpec } from './messages.ts';
import { type AssignmentUrls, type StorageBrokerLike, presignAssignmentUrls, presignTtlSeconds } from './storage.ts';
import type { InflightTask, TaskTable } from './task-table.ts';

export interface AssignmentOptions {
  /** Without a broker assignments carry no URLs. */
  broker: StorageBrokerLike | undefined;
  presignMaxTtlSeconds: number;
  connection: Connection;
  tasks: TaskTable;
  flow: Flow;
  completions: BridgeCompletions;
  acks: Acks;
  events: BridgeEvents;
  logger: Logger;
  /** The declared outputs of an activity type on the current connection. */
  outputsOf(activityType: string): OutputDecl[];
}

export interface Assignment {
  /** Offers a task; the answer arrives as an event (the promise settles once it was sent). */
  assign(task: TaskSpec): Promise<void>;
  /** Cancels a task in flight (sent now if it is on the stream, else when it gets there or at the next Resync). */
  cancel(activityId: string, reason: string): void;
}

export function createAssignment(opts: AssignmentOptions): Assignment {
  const { connection, tasks, flow, events } = opts;
  const log = opts.logger;

  function refuse(task: TaskSpec, reason: AssignRejectReason, retryable: boolean, detail?: string): void {
    log.debug('Assignment refused.', { activity_id: task.activity_id, reason, detail });
    events.send({
      type: 'assignRejected',
      activity_id: task.activity_id,
      reason,
      retryable,
      ...(detail !== undefined ? { detail } : {}),
    });
    // The supervisor counted a credit for this assign; tell it the figure again.
    flow.emitCredits();
  }

  function toWire(task: TaskSpec, parsed: ReturnType<typeof parseInputRef>, urls: AssignmentUrls) {
    return {
      task_assignment: {
        activity_id: task.activity_id,
        activity_type: task.activity_type,
        attempt: task.attempt,
        input_ref: task.input_ref,
        input_json: parsed.kind === 'json' ? parsed.json : '',
        input_urls: urls.inputUrls,
        output_urls: urls.outputUrls,
        deadline_unix_ms: task.deadline_unix_ms,
        workflow_instance: task.workflow_instance ?? '',
      },
    };
  }

  async function assign(task: TaskSpec): Promise<void> {
    const reoffer = task.reoffer === true;
    flow.onAssign(reoffer);
    const state = connection.state();
    if (state === 'stopped' || flow.draining()) return refuse(task, 'draining', true);
    if (!isActivityId(task.activity_id) || !Number.isInteger(task.attempt) || task.attempt < 0) {
      return refuse(task, 'invalid_task', false, 'bad activity id or attempt');
    }
    let parsed: ReturnType<typeof parseInputRef>;
    try {
      parsed = parseInputRef(task.input_ref);
    } catch (e) {
      return refuse(task, 'invalid_task', false, errorText(e));
    }
    const existing = tasks.get(task.activity_id);
    if (existing !== undefined) {
      if (!reoffer || existing.stage !== 'sent') return refuse(task, 'duplicate', false);
      return reofferSent(existing, task);
    }
    const verdict = opts.acks.get(task.activity_id);
    if (reoffer && verdict !== undefined && (verdict.state !== 'decided' || verdict.accepted === true))
      return refuse(task, 'duplicate', false, 'its Completion was already taken; the verdict follows');
    if (task.deadline_unix_ms <= Date.now()) return refuse(task, 'expired', false);
    const c = connection.current();
    if (state !== 'ready' || c === undefined) return refuse(task, 'not_connected', true, `bridge is ${state}`);
    if (!c.caps?.activity_types.includes(task.activity_type)) {
      return refuse(task, 'unsupported_type', false, `executor supports: ${c.caps?.activity_types.join(', ')}`);
    }
    if (!reoffer && flow.available() < 1) return refuse(task, 'no_credits', true);
    // A new run (or a re-offer of one) of this activity: earlier verdicts are history.
    opts.acks.forget(task.activity_id);

    const entry: InflightTask = {
      task,
      stage: 'reserved',
      inputRefs: new Set(parsed.blobRefs),
      cancelReason: undefined,
      cancelSent: false,
    };
    tasks.add(entry);
    c.reserved += 1;
    flow.emitCredits();

    let urls: AssignmentUrls = { inputUrls: {}, outputUrls: {} };
    let storageError: unknown;
    if (opts.broker !== undefined) {
      try {
        const ttlSeconds = presignTtlSeconds(task, opts.presignMaxTtlSeconds);
        urls = await presignAssignmentUrls(
          opts.broker,
          task,
          parsed.blobRefs,
          opts.outputsOf(task.activity_type),
          ttlSeconds,
        );
      } catch (e) {
        // A re-offered run has its URLs; it goes without new ones rather than wait for storage.
        if (!reoffer) storageError = e;
      }
    }

    const release = (): void => {
      tasks.release(task.activity_id);
      c.reserved -= 1;
    };
    if (tasks.get(task.activity_id) !== entry) {
      // Its Completion arrived while the URLs were presigned (an executor holding the run answered early).
      c.reserved -= 1;
      events.send({ type: 'accepted', activity_id: task.activity_id });
      flow.emitCredits();
      return;
    }
    const now = connection.state(); // re-read: it may have changed during the await
    if (connection.current() !== c || now !== 'ready') {
      release();
      flow.emitCredits();
      return refuse(
        task,
        now === 'stopped' ? 'draining' : 'not_connected',
        true,
        'connection lost while preparing the assignment',
      );
    }
    if (storageError !== undefined) {
      release();
      flow.emitCredits();
      // Only a refusal about this activity's own data fails it; an unreachable or worker-refusing service waits.
      const f = classifyStorageFailure(storageError);
      // An unsettled refusal (the chain may be mid-reorg) waits like an unreachable service.
      const reason =
        f.kind === 'activity' ? 'invalid_task' : f.kind === 'worker' ? 'storage_refused' : 'storage_unavailable';
      return refuse(task, reason, f.kind !== 'activity', errorText(storageError));
    }
    if (entry.cancelReason !== undefined) {
      c.reserved -= 1;
      opts.completions.settle(task.activity_id, 'cancelled', task.attempt, {
        ok: false,
        code: 'CANCELLED',
        message: entry.cancelReason,
        retryable: false,
      });
      return;
    }
    c.reserved -= 1;
    entry.stage = 'sent';
    c.sent += 1;
    const ok = connection.write(c, toWire(task, parsed, urls));
    if (!ok) {
      // The stream broke under us; the task stays in flight and the next Resync decides.
      return;
    }
    if (reoffer)
      log.info('Re-offered a task to the executor that holds it.', {
        activity_id: task.activity_id,
        attempt: task.attempt,
      });
    else
      log.debug('Assigned a task.', {
        activity_id: task.activity_id,
        activity_type: task.activity_type,
        attempt: task.attempt,
      });
    events.send({ type: 'accepted', activity_id: task.activity_id });
    flow.emitCredits();
  }

  /** A re-offer of a task already on the stream: the executor learns the new attempt number; nothing else. */
  function reofferSent(existing: InflightTask, task: TaskSpec): void {
    const c = connection.current();
    if (connection.state() !== 'ready' || c === undefined)
      return refuse(task, 'not_connected', true, `bridge is ${connection.state()}`);
    // Attempt 0 (a record with no attempt history) says nothing new: the run keeps the number it has.
    if (task.attempt !== 0 && task.attempt !== existing.task.attempt) {
      existing.task = { ...existing.task, attempt: task.attempt, reoffer: true };
      c.sent += 1;
      if (!connection.write(c, toWire(task, parseInputRef(task.input_ref), { inputUrls: {}, outputUrls: {} }))) return;
      log.info('Re-offered a task to the executor that holds it.', {
        activity_id: task.activity_id,
        attempt: task.attempt,
      });
    } else {
      log.debug('Re-offer of a task already on the stream under its attempt: nothing to send.', {
        activity_id: task.activity_id,
        attempt: task.attempt,
      });
    }
    events.send({ type: 'accepted', activity_id: task.activity_id });
    flow.emitCredits();
  }

  function cancel(activityId: string, reason: string): void {
    const t = tasks.get(activityId);
    if (t === undefined) {
      log.debug('Cancel for a task not in flight ignored.', { activity_id: activityId });
      return;
    }
    t.cancelReason = reason.slice(0, 1024);
    const c = connection.current();
    if (t.stage === 'sent' && c !== undefined && connection.state() === 'ready' && !t.cancelSent) {
      t.cancelSent = connection.write(c, { cancel: { activity_id: activityId, reason: t.cancelReason } });
    }
  }

  return { assign, cancel };
}
