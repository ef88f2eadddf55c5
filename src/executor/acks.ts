/**
 * Verdicts on the executor's Completions and their relay as CompletionAcks. Every Completion the bridge takes is
 * remembered here from the moment it is taken (`checking` its outputs) through `forwarded` (the supervisor
 * decides) to `decided` (the verdict, from the supervisor's `ackCompletion` or the bridge's own refusal). A
 * Completion sent again (the executor re-sends an unacknowledged one on every new stream) is answered from this
 * memory — re-acked when decided, ignored while the verdict is on its way — and never reaches the supervisor twice.
 * The memory is bounded: two generations of `capacity` ids each, like the task table's closed memory.
 */
import type { Logger } from '../internal/logger.ts';
import type { Conn, Connection } from './connection.ts';

/** What the bridge knows of one taken Completion. */
export interface Verdict {
  /** The attempt the executor wrote (acks name it, whatever attempt the supervisor was told). */
  executorAttempt: number;
  /** The attempt forwarded to the supervisor (the assignment's, when a re-offer raised it). */
  attempt: number;
  state: 'checking' | 'forwarded' | 'decided';
  accepted?: boolean;
  code?: string;
  reason?: string;
}

/** The supervisor's (or the bridge's own) answer to one Completion. */
export interface AckDecision {
  activity_id: string;
  attempt: number;
  accepted: boolean;
  code?: string;
  reason?: string;
}

/** The verdict memory and the CompletionAck writer. */
export interface Acks {
  get(id: string): Verdict | undefined;
  /** Remembers a Completion being taken (its outputs are being checked). */
  taking(id: string, executorAttempt: number, attempt: number): void;
  /** The Completion went to the supervisor. */
  forwarded(id: string): void;
  /** Forgets `id` (a new assignment of it starts a new run). */
  forget(id: string): void;
  /** Records a verdict and writes the CompletionAck on the current stream (if there is one past its Hello). */
  decide(d: AckDecision): void;
  /** Writes the remembered verdict of `id` again on `c` (a re-sent Completion). */
  resend(c: Conn, id: string): void;
  /** Writes a refusal of a Completion the bridge does not remember taking (NOT_HELD, BAD_MESSAGE …). */
  refuse(c: Conn, id: string, attempt: number, code: string, reason: string): void;
}

/** Generations of the verdict memory. */
export const VERDICT_MEMORY = 10_000;

export function createAcks(opts: { connection: Connection; logger: Logger; capacity?: number }): Acks {
  const { connection } = opts;
  const capacity = opts.capacity ?? VERDICT_MEMORY;
  let young = new Map<string, Verdict>();
  let old = new Map<string, Verdict>();

  const get = (id: string): Verdict | undefined => young.get(id) ?? old.get(id);
  function set(id: string, v: Verdict): void {
    old.delete(id);
    young.set(id, v);
    if (young.size >= capacity) {
      old = young;
      young = new Map();
    }
  }

  function write(c: Conn | undefined, id: string, attempt: number, accepted: boolean, code = '', reason = ''): void {
    // Before its Hello is answered the executor ignores everything; the next stream's re-sent Completion is
    // answered from memory instead.
    if (c === undefined || c.hello === undefined || c.fatal !== undefined) return;
    connection.write(c, {
      completion_ack: { activity_id: id, attempt, accepted, code, reason: reason.slice(0, 1024) },
    });
  }

  return {
    get,
    taking(id, executorAttempt, attempt) {
      set(id, { executorAttempt, attempt, state: 'checking' });
    },
    forwarded(id) {
      const v = get(id);
      if (v !== undefined) v.state = 'forwarded';
    },
    forget(id) {
      young.delete(id);
      old.delete(id);
    },
    decide(d) {
      const v = get(d.activity_id);
      if (v === undefined) {
        // Not a Completion the executor sent through this bridge (e.g. the bridge's own DEADLINE_EXCEEDED): pass
        // the verdict on, remember nothing — a later Completion from the executor is judged afresh.
        write(connection.current(), d.activity_id, d.attempt, d.accepted, d.code, d.reason);
        return;
      }
      // The executor's own attempt number when the verdict is for the Completion it sent (a re-offer may have
      // forwarded it under a later attempt).
      const executorAttempt = v.attempt === d.attempt ? v.executorAttempt : d.attempt;
      const decided: Verdict = {
        executorAttempt,
        attempt: d.attempt,
        state: 'decided',
        accepted: d.accepted,
        ...(d.code !== undefined ? { code: d.code } : {}),
        ...(d.reason !== undefined ? { reason: d.reason } : {}),
      };
      set(d.activity_id, decided);
      opts.logger.debug('Completion acknowledged.', {
        activity_id: d.activity_id,
        attempt: executorAttempt,
        accepted: d.accepted,
        code: d.code,
      });
      write(connection.current(), d.activity_id, executorAttempt, d.accepted, d.code, d.reason);
    },
    resend(c, id) {
      const v = get(id);
      if (v?.state !== 'decided' || v.accepted === undefined) return;
      write(c, id, v.executorAttempt, v.accepted, v.code, v.reason);
    },
    refuse(c, id, attempt, code, reason) {
      write(c, id, attempt, false, code, reason);
    },
  };
}
