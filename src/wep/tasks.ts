/**
 * The executor's tasks: the ones running and the completions wcp has not taken yet. Tasks belong to the executor,
 * not to a wcp stream: they keep running while wcp is away. A completion stays here until wcp has it: against a
 * wcp that acknowledges completions (HelloAck.acks_completions) until its CompletionAck arrives — it is listed in
 * every Resync and sent again on every new stream, since a stream may close right after a write — and against an
 * older wcp until it is written. A rejected ack is logged with its code and the completion dropped (the activity
 * is wcp's to re-dispatch or fail). A TaskAssignment for an activity held here is a re-offer: answered by the one
 * run (a finished one sends its completion again under the new attempt number), never by a second run. Every task
 * accepted starts at once (no queue) with a Progress of 0, so wcp knows it runs; runs aborted by a shutdown, and
 * assignments arriving while stopping, are answered SHUTTING_DOWN (retryable: wcp does not count them).
 */
import type { ExecutorMessageWire, TaskAssignmentWire } from '../taskstream/protocol.ts';
import { isActivityId } from '../taskstream/refs.ts';
import type { CompletionResult } from '../taskstream/types.ts';
import type { Logger } from '../internal/logger.ts';
import { type AbortCause, type Handler, type StorageGrant, runTask } from './run-task.ts';
import type { ActivitySpec } from './spec.ts';

export interface TaskRunnerOptions {
  specs: Map<string, ActivitySpec>;
  handlers: Record<string, Handler>;
  /** Most tasks run at once; more are answered NO_CAPACITY. */
  concurrency: number;
  logger: Logger;
  /** False once the executor is stopping: new assignments are answered SHUTTING_DOWN. */
  accepting(): boolean;
  /** Writes to the connected (acknowledged) wcp stream; false when there is none or the write failed. */
  send(msg: ExecutorMessageWire): boolean;
  /** Whether the connected wcp acknowledges completions (then a written completion is kept until acked). */
  acksCompletions(): boolean;
  /** The executor's credits changed (coalesced by the caller). */
  capacityChanged(): void;
  requestStorage(activityId: string, key: string, method: 'GET' | 'PUT'): Promise<StorageGrant>;
}

/** Running tasks and undelivered completions. */
export interface TaskRunner {
  /** Starts (or answers) one TaskAssignment. */
  onAssignment(a: TaskAssignmentWire): void;
  /** Aborts a running task with `{ cause: 'cancel' }`; unknown ids are ignored. */
  cancel(activityId: string, reason: string): void;
  runningCount(): number;
  pendingCount(): number;
  runningIds(): string[];
  pendingIds(): string[];
  /** Every id wcp should see in a Resync: running, or finished with the completion not yet taken by wcp. */
  heldIds(): string[];
  /**
   * Writes held completions in order with `write`, stopping at the first that fails; `acks` says whether this
   * stream's wcp acknowledges them (then they stay held until acked).
   */
  flushPending(write: (msg: ExecutorMessageWire) => boolean, acks: boolean): void;
  /** wcp's CompletionAck: drops the held completion it answers (an ack older than the held attempt is stale). */
  onAck(ack: { activity_id: string; attempt: number; accepted: boolean; code: string; reason: string }): void;
  /** Lets running tasks finish for up to `graceMs`, then aborts the rest with `{ cause: 'shutdown' }` and waits. */
  finish(graceMs: number): Promise<void>;
}

/** A Completion as written (the member is always set). */
type CompletionWire = Extract<ExecutorMessageWire, { completion: unknown }>;

interface RunningTask {
  id: string;
  attempt: number;
  controller: AbortController;
  done: Promise<void>;
}

export function createTaskRunner(opts: TaskRunnerOptions): TaskRunner {
  const log = opts.logger;
  const running = new Map<string, RunningTask>();
  /** Completions wcp has not taken yet: not written, or (against an acking wcp) not acknowledged. */
  const pending = new Map<string, CompletionWire>();

  function deliver(id: string, msg: CompletionWire): void {
    pending.set(id, msg);
    // Checked after the write: the write may replace the stream.
    if (opts.send(msg) && !opts.acksCompletions()) pending.delete(id);
  }

  function complete(id: string, attempt: number, result: CompletionResult): void {
    const msg: CompletionWire = {
      completion: result.ok
        ? {
            activity_id: id,
            attempt,
            success: { output_refs: result.output_refs, metadata_json: result.metadata_json },
          }
        : {
            activity_id: id,
            attempt,
            failure: { code: result.code, message: result.message, retryable: result.retryable },
          },
    };
    deliver(id, msg);
  }

  function onAssignment(a: TaskAssignmentWire): void {
    const id = String(a.activity_id);
    const attempt = Number(a.attempt);
    if (!isActivityId(id)) return log.warn('Ignored an assignment with an invalid activity id.');
    if (running.has(id) || pending.has(id)) {
      // wcp re-offered a task we still hold (e.g. after it restarted): keep the one run and answer the re-offer;
      // its result carries the attempt wcp now expects.
      log.info('Assignment for a task already held; keeping the existing run.', { activity_id: id, attempt });
      const held = running.get(id);
      if (held !== undefined) held.attempt = attempt;
      const done = pending.get(id);
      // A new message, not an edit: the earlier one may still sit in the stream's write buffer.
      if (done !== undefined) deliver(id, { completion: { ...done.completion, attempt } });
      opts.capacityChanged();
      return;
    }
    if (!opts.accepting())
      return complete(id, attempt, {
        ok: false,
        code: 'SHUTTING_DOWN',
        message: 'executor is shutting down',
        retryable: true,
      });
    const spec = opts.specs.get(a.activity_type);
    const handler = opts.handlers[a.activity_type];
    if (spec === undefined || handler === undefined) {
      return complete(id, attempt, {
        ok: false,
        code: 'UNSUPPORTED_TYPE',
        message: `no handler for ${a.activity_type}`,
        retryable: false,
      });
    }
    if (running.size >= opts.concurrency) {
      return complete(id, attempt, {
        ok: false,
        code: 'NO_CAPACITY',
        message: `all ${opts.concurrency} slots busy`,
        retryable: true,
      });
    }
    const controller = new AbortController();
    const task: RunningTask = { id, attempt, controller, done: Promise.resolve() };
    running.set(id, task);
    opts.capacityChanged();
    log.info('Task started.', { activity_id: id, activity_type: a.activity_type, attempt });
    // The first Progress tells wcp the task runs (the proto: a task with none was queued when an executor crashes).
    opts.send({ progress: { activity_id: id, fraction: 0, message: 'started' } });
    task.done = runTask(
      {
        activity_id: id,
        activity_type: a.activity_type,
        attempt,
        input_ref: String(a.input_ref),
        input_json: String(a.input_json ?? ''),
        input_urls: a.input_urls ?? {},
        output_urls: a.output_urls ?? {},
        deadline_unix_ms: Number(a.deadline_unix_ms),
        workflow_instance: String(a.workflow_instance ?? ''),
      },
      {
        spec,
        handler,
        controller,
        logger: log,
        progress: (fraction, message) => {
          if (running.has(id)) opts.send({ progress: { activity_id: id, fraction, message } });
        },
        requestStorage: (key, method) => opts.requestStorage(id, key, method),
      },
    ).then(({ result }) => {
      running.delete(id);
      log.info('Task finished.', { activity_id: id, ok: result.ok, code: result.ok ? undefined : result.code });
      complete(id, task.attempt, result);
      opts.capacityChanged();
    });
  }

  function cancel(activityId: string, reason: string): void {
    const t = running.get(activityId);
    if (t === undefined) return;
    log.info('Cancelling a task.', { activity_id: t.id, reason });
    t.controller.abort({ cause: 'cancel', reason } satisfies AbortCause);
  }

  function flushPending(write: (msg: ExecutorMessageWire) => boolean, acks: boolean): void {
    for (const [id, msg] of pending) {
      if (!write(msg)) break;
      if (!acks) pending.delete(id);
    }
  }

  function onAck(ack: { activity_id: string; attempt: number; accepted: boolean; code: string; reason: string }): void {
    const held = pending.get(ack.activity_id);
    if (held === undefined || ack.attempt < held.completion.attempt) {
      log.debug('Ignored a CompletionAck for no held completion.', {
        activity_id: ack.activity_id,
        attempt: ack.attempt,
      });
      return;
    }
    pending.delete(ack.activity_id);
    if (ack.accepted) log.debug('wcp took a completion.', { activity_id: ack.activity_id, attempt: ack.attempt });
    else
      log.warn('wcp rejected a completion; dropped.', {
        activity_id: ack.activity_id,
        attempt: ack.attempt,
        code: ack.code,
        reason: ack.reason,
      });
  }

  async function finish(graceMs: number): Promise<void> {
    const all = () => Promise.all([...running.values()].map((t) => t.done));
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([all(), new Promise((r) => (graceTimer = setTimeout(r, graceMs)))]);
    clearTimeout(graceTimer);
    for (const t of running.values()) t.controller.abort({ cause: 'shutdown' } satisfies AbortCause);
    await all();
  }

  return {
    onAssignment,
    cancel,
    runningCount: () => running.size,
    pendingCount: () => pending.size,
    runningIds: () => [...running.keys()],
    pendingIds: () => [...pending.keys()],
    heldIds: () => [...new Set([...running.keys(), ...pending.keys()])],
    flushPending,
    onAck,
    finish,
  };
}
