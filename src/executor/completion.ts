/**
 * Completions: every way a task leaves flight with a result for the supervisor — the executor's Completion
 * (checked by `completionProblem`, a pure function of its explicit inputs), a deadline passed without one, a
 * cancel that arrived while the assignment was being prepared. Each emits at most one `completion` per
 * assignment: the task is closed in the task table before the event is sent.
 */
import type { Logger } from '../internal/logger.ts';
import type { CompletionResult } from '../taskstream/types.ts';
import { parseBlobRef } from '../taskstream/refs.ts';
import type { ExecutorMessage } from '../taskstream/validate.ts';
import type { Flow } from './credits.ts';
import type { BridgeEvents } from './events.ts';
import type { ClosedHow, InflightTask, TaskTable } from './task-table.ts';

/** A validated Completion from the executor. */
export type CompletionMessage = Extract<ExecutorMessage, { kind: 'completion' }>;

/** Everything the acceptance of one Completion depends on. */
export interface CompletionCheck {
  completion: CompletionMessage;
  /** Whether this connection's Resync arrived (before it, the bridge cannot tell which tasks the executor holds). */
  resynced: boolean;
  /** The activity's in-flight entry, if any. */
  task: InflightTask | undefined;
  /** How the activity was recently closed, if it was. */
  closedAs: ClosedHow | undefined;
}

/**
 * Why the Completion is refused, or undefined to accept it. Accepted only for a task sent on the stream, for the
 * attempt assigned, with every output in the activity's own blob namespace or one of its input references.
 */
export function completionProblem({
  completion: m,
  resynced,
  task: t,
  closedAs: how,
}: CompletionCheck): string | undefined {
  if (!resynced) return 'Completion before Resync';
  if (t === undefined || t.stage !== 'sent') {
    return t !== undefined
      ? 'Completion for an activity not yet assigned'
      : how === 'completed'
        ? 'duplicate Completion'
        : how !== undefined
          ? `late Completion (task already ${how})`
          : 'Completion for an activity not assigned to this executor';
  }
  if (m.attempt !== t.task.attempt) return `Completion for attempt ${m.attempt}, assigned attempt ${t.task.attempt}`;
  if (m.result.ok) {
    for (const [name, ref] of Object.entries(m.result.output_refs)) {
      const b = parseBlobRef(ref);
      if (b === null || (b.namespace !== m.activity_id && !t.inputRefs.has(ref))) {
        return `output "${name}" points outside the activity's namespace: ${ref.slice(0, 120)}`;
      }
    }
  }
  return undefined;
}

export interface CompletionsOptions {
  tasks: TaskTable;
  flow: Flow;
  events: BridgeEvents;
  logger: Logger;
  /** A task sent this long past its deadline is dropped with DEADLINE_EXCEEDED. */
  deadlineGraceMs: number;
}

/** Closes tasks with a result for the supervisor. */
export interface Completions {
  /** The executor's Completion on a connection (`resynced` as of that connection): accepted or rejected. */
  onCompletion(m: CompletionMessage, resynced: boolean): void;
  /** Closes an in-flight task as `how` and emits its completion. */
  settle(id: string, how: ClosedHow, attempt: number, result: CompletionResult): void;
  /** Drops every sent task past its deadline plus the grace, as DEADLINE_EXCEEDED. */
  expireOverdue(now: number): void;
}

export function createCompletions(opts: CompletionsOptions): Completions {
  const { tasks, flow, events } = opts;

  function settle(id: string, how: ClosedHow, attempt: number, result: CompletionResult): void {
    tasks.close(id, how);
    events.send({ type: 'completion', activity_id: id, attempt, result });
    flow.emitCredits();
    flow.checkDrained();
  }

  function onCompletion(m: CompletionMessage, resynced: boolean): void {
    const id = m.activity_id;
    const problem = completionProblem({ completion: m, resynced, task: tasks.get(id), closedAs: tasks.closedAs(id) });
    if (problem !== undefined) return events.reject(problem, id);
    settle(id, 'completed', m.attempt, m.result);
  }

  function expireOverdue(now: number): void {
    for (const [id, t] of tasks.entries()) {
      if (t.stage === 'sent' && now > t.task.deadline_unix_ms + opts.deadlineGraceMs) {
        opts.logger.warn('Dropped a task the executor did not finish before its deadline.', { activity_id: id });
        settle(id, 'expired', t.task.attempt, {
          ok: false,
          code: 'DEADLINE_EXCEEDED',
          message: 'executor did not complete before the deadline',
          retryable: false,
        });
      }
    }
  }

  return { onCompletion, settle, expireOverdue };
}
