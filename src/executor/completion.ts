/**
 * Completions: every way a task leaves flight with a result for the supervisor — the executor's Completion, a
 * deadline passed without one, a cancel that arrived while the assignment was being prepared.
 *
 * An executor Completion is judged by two pure functions of explicit inputs — `completionDecision` (whose run it
 * is: take it, refuse it, or answer it from the verdict memory) and `outputProblem` (every output ref in the
 * activity's own namespace, every required declared output present) — and then, where storage can tell, by
 * whether its objects exist (output-check.ts). A taken Completion is forwarded as `completion` (with
 * `assigned_here: false` for an activity an earlier wcp assigned, listed in this stream's Resync); the
 * supervisor's `ackCompletion` comes back through acks.ts. A refused one is answered with a rejected CompletionAck
 * and, when it concerns a task the bridge holds, a `completionRejected` (the supervisor re-dispatches or fails it).
 * Each assignment yields at most one `completion`: the task leaves the table before anything is emitted.
 */
import type { Logger } from '../internal/logger.ts';
import { COMPLETION_ACK_CODES as CODES } from '../taskstream/protocol.ts';
import { parseBlobRef } from '../taskstream/refs.ts';
import type { CompletionResult } from '../taskstream/types.ts';
import type { ExecutorMessage, OutputDecl } from '../taskstream/validate.ts';
import type { Acks, Verdict } from './acks.ts';
import type { Conn } from './connection.ts';
import type { Flow } from './credits.ts';
import type { BridgeEvents } from './events.ts';
import type { OutputExistence } from './output-check.ts';
import type { ClosedHow, InflightTask, TaskTable } from './task-table.ts';

/** A validated Completion from the executor. */
export type CompletionMessage = Extract<ExecutorMessage, { kind: 'completion' }>;

/** Everything the fate of one Completion depends on. */
export interface CompletionCheck {
  activity_id: string;
  attempt: number;
  /** Whether this connection's Resync arrived (before it, the bridge cannot tell which tasks the executor holds). */
  resynced: boolean;
  /** Whether this connection's Resync listed the activity. */
  listedInResync: boolean;
  /** The activity's in-flight entry, if any. */
  task: InflightTask | undefined;
  /** How the activity was recently closed, if it was. */
  closedAs: ClosedHow | undefined;
  /** What the verdict memory holds for it. */
  verdict: Verdict | undefined;
}

/** What to do with one Completion. */
export type CompletionDecision =
  /** Check its outputs, then forward it under `attempt`. */
  | { kind: 'take'; attempt: number; assignedHere: boolean }
  /**
   * Refuse it: a rejected ack to the executor; when `held` (a task in flight, closed now, or one the Resync
   * listed) also a `completionRejected` under `attempt`.
   */
  | { kind: 'refuse'; code: string; reason: string; held: boolean; attempt: number }
  /** Already decided: send the same ack again. */
  | { kind: 'resend' }
  /** Already taken, verdict on its way: nothing to do. */
  | { kind: 'ignore'; reason: string };

/** Decides a Completion's fate; see `CompletionDecision`. */
export function completionDecision(k: CompletionCheck): CompletionDecision {
  const t = k.task;
  const refuse = (code: string, reason: string, held: boolean, attempt = k.attempt): CompletionDecision => ({
    kind: 'refuse',
    code,
    reason,
    held,
    attempt,
  });
  if (!k.resynced)
    return refuse(CODES.badMessage, 'Completion before Resync', t !== undefined, t?.task.attempt ?? k.attempt);
  if (t !== undefined) {
    // A lower attempt is the same run answering before it saw a re-offer's new number: the executor keeps one
    // run per activity. A higher one was never assigned — unless the task's attempt is 0, a re-offer of a record
    // with no attempt history (rebuilt from chain after a store wipe): the executor's run names the attempt.
    if (t.task.attempt === 0) return { kind: 'take', attempt: k.attempt, assignedHere: true };
    if (k.attempt > t.task.attempt)
      return refuse(
        CODES.wrongAttempt,
        `Completion for attempt ${k.attempt}, assigned attempt ${t.task.attempt}`,
        true,
        t.task.attempt,
      );
    return { kind: 'take', attempt: t.task.attempt, assignedHere: true };
  }
  if (k.verdict !== undefined) {
    return k.verdict.state === 'decided'
      ? { kind: 'resend' }
      : { kind: 'ignore', reason: 'Completion sent again while its verdict is pending' };
  }
  if (k.closedAs === 'completed') return refuse(CODES.duplicate, 'duplicate Completion', false);
  if (k.closedAs !== undefined) return refuse(CODES.notHeld, `late Completion (task already ${k.closedAs})`, false);
  if (k.listedInResync) return { kind: 'take', attempt: k.attempt, assignedHere: false };
  return refuse(
    CODES.notHeld,
    'Completion for an activity not assigned to this executor nor listed in its Resync',
    false,
  );
}

/**
 * Why a success's outputs are refused (OUTPUT_INVALID), or undefined: every ref must be `blob:<activity_id>/…`
 * and every required output of `declared` (when the activity type is known) present.
 */
export function outputProblem(
  activityId: string,
  result: CompletionResult,
  declared: readonly OutputDecl[] | undefined,
): string | undefined {
  if (!result.ok) return undefined;
  for (const [name, ref] of Object.entries(result.output_refs)) {
    const b = parseBlobRef(ref);
    if (b === null) return `output "${name}" is not a blob reference: ${ref.slice(0, 120)}`;
    if (b.namespace !== activityId)
      return `output "${name}" points outside the activity's namespace blob:${activityId}/: ${ref.slice(0, 120)}`;
  }
  for (const d of declared ?? []) {
    if (d.required !== false && result.output_refs[d.name] === undefined)
      return `declared output "${d.name}" (${d.key}) is missing`;
  }
  return undefined;
}

export interface BridgeCompletionsOptions {
  tasks: TaskTable;
  flow: Flow;
  events: BridgeEvents;
  acks: Acks;
  logger: Logger;
  /** A task sent this long past its deadline is dropped with DEADLINE_EXCEEDED. */
  deadlineGraceMs: number;
  /** The declared outputs of an activity type on the current connection. */
  outputsOf(activityType: string): OutputDecl[];
  /** Checks that output objects exist; without it (no storage broker) only the refs are checked. */
  existence: OutputExistence | undefined;
}

/**
 * The bridge's side of Completions: closes tasks with a result for the supervisor (which settles them on chain in
 * `lifecycle/completions.ts`).
 */
export interface BridgeCompletions {
  /** The executor's Completion on connection `c`: taken (checked, then forwarded) or refused. */
  onCompletion(c: Conn, m: CompletionMessage): void;
  /** A Completion that failed validation: refused as BAD_MESSAGE (`attempt` undefined when unreadable). */
  onMalformed(c: Conn, id: string, attempt: number | undefined, reason: string): void;
  /** Closes an in-flight task as `how` and emits its completion (the bridge's own verdict, not the executor's). */
  settle(id: string, how: ClosedHow, attempt: number, result: CompletionResult): void;
  /** Drops every sent task past its deadline plus the grace, as DEADLINE_EXCEEDED. */
  expireOverdue(now: number): void;
  /** Completions whose outputs are being checked right now. */
  checking(): number;
}

export function createBridgeCompletions(opts: BridgeCompletionsOptions): BridgeCompletions {
  const { tasks, flow, events, acks } = opts;
  const log = opts.logger;
  let checking = 0;

  function closed(): void {
    flow.emitCredits();
    flow.checkDrained();
  }

  function settle(id: string, how: ClosedHow, attempt: number, result: CompletionResult): void {
    tasks.close(id, how);
    events.send({ type: 'completion', activity_id: id, attempt, result });
    closed();
  }

  function refuse(c: Conn, id: string, d: Extract<CompletionDecision, { kind: 'refuse' }>, executorAttempt: number) {
    events.reject(`${d.code}: ${d.reason}`, id);
    if (d.held) {
      if (tasks.has(id)) {
        tasks.close(id, 'rejected');
        closed();
      }
      acks.taking(id, executorAttempt, d.attempt);
      acks.decide({ activity_id: id, attempt: d.attempt, accepted: false, code: d.code, reason: d.reason });
      events.send({ type: 'completionRejected', activity_id: id, attempt: d.attempt, code: d.code, reason: d.reason });
    } else {
      acks.refuse(c, id, executorAttempt, d.code, d.reason);
    }
  }

  function judge(c: Conn, id: string, attempt: number): CompletionDecision {
    return completionDecision({
      activity_id: id,
      attempt,
      resynced: c.resynced,
      listedInResync: c.heldAtResync.has(id),
      task: tasks.get(id),
      closedAs: tasks.closedAs(id),
      verdict: acks.get(id),
    });
  }

  function onCompletion(c: Conn, m: CompletionMessage): void {
    const id = m.activity_id;
    const d = judge(c, id, m.attempt);
    if (d.kind === 'ignore') return log.debug(d.reason, { activity_id: id });
    if (d.kind === 'resend') return acks.resend(c, id);
    if (d.kind === 'refuse') return refuse(c, id, d, m.attempt);
    const t = tasks.get(id);
    const declared = t !== undefined ? opts.outputsOf(t.task.activity_type) : undefined;
    const problem = outputProblem(id, m.result, declared);
    if (problem !== undefined) {
      return refuse(
        c,
        id,
        { kind: 'refuse', code: CODES.outputInvalid, reason: problem, held: true, attempt: d.attempt },
        m.attempt,
      );
    }
    // Taken: out of flight now (the executor's slot is free), so nothing else can close it twice.
    if (t !== undefined) {
      tasks.close(id, 'completed');
      flow.emitCredits();
    }
    acks.taking(id, m.attempt, d.attempt);
    const forward = (): void => {
      acks.forwarded(id);
      events.send({
        type: 'completion',
        activity_id: id,
        attempt: d.attempt,
        result: m.result,
        ...(d.assignedHere ? {} : { assigned_here: false }),
      });
      flow.checkDrained();
    };
    const existence = opts.existence;
    if (!m.result.ok || existence === undefined || Object.keys(m.result.output_refs).length === 0) return forward();
    checking += 1;
    existence
      .missing(m.result.output_refs)
      .catch(() => [] as string[])
      .then((missing) => {
        checking -= 1;
        if (missing.length === 0) return forward();
        const reason = `output ${missing.map((n) => `"${n}"`).join(', ')} was never uploaded (storage has no such object)`;
        events.reject(`${CODES.outputInvalid}: ${reason}`, id);
        acks.decide({ activity_id: id, attempt: d.attempt, accepted: false, code: CODES.outputInvalid, reason });
        events.send({
          type: 'completionRejected',
          activity_id: id,
          attempt: d.attempt,
          code: CODES.outputInvalid,
          reason,
        });
        flow.checkDrained();
      });
  }

  function onMalformed(c: Conn, id: string, attempt: number | undefined, reason: string): void {
    const t = tasks.get(id);
    const a = attempt ?? t?.task.attempt ?? 0;
    const d = judge(c, id, a);
    if (d.kind === 'ignore' || d.kind === 'resend') return events.reject(reason, id);
    // Whatever else is wrong with it, a malformed Completion is refused as such.
    const held = d.kind === 'take' || d.held;
    refuse(c, id, { kind: 'refuse', code: CODES.badMessage, reason, held, attempt: d.attempt }, a);
  }

  function expireOverdue(now: number): void {
    for (const [id, t] of tasks.entries()) {
      if (t.stage === 'sent' && now > t.task.deadline_unix_ms + opts.deadlineGraceMs) {
        log.warn('Dropped a task the executor did not finish before its deadline.', { activity_id: id });
        settle(id, 'expired', t.task.attempt, {
          ok: false,
          code: 'DEADLINE_EXCEEDED',
          message: 'executor did not complete before the deadline',
          retryable: false,
        });
      }
    }
  }

  return { onCompletion, onMalformed, settle, expireOverdue, checking: () => checking };
}
