/**
 * The executor's Completions applied to the records. Every Completion the bridge forwards gets one definite answer:
 * applied (its outcome committed, then `ackCompletion` accepted), a duplicate of one already applied (acknowledged
 * too), not held (the activity ended here without it — expired, lost, finished elsewhere, after a Cancel: refused
 * NOT_HELD, as the proto says), refused (acknowledged as rejected with a code; the record re-dispatched or failed when the refusal leaves
 * nothing running), or — for an activity not held yet (a store rebuilt from chain, the record not back yet) — kept
 * in memory and re-tried by the periodic re-check, which answers it once the chain tells.
 *
 * An accepted Completion whose outcome is a transaction (complete or fail) is acknowledged only once that record
 * leaves `completing`/`failing` (mined, or settled by the chain's truth): until then the executor keeps the result,
 * so a store wiped in between loses nothing (the record is rebuilt from chain as claimed and the re-sent Completion
 * is taken again, never re-run). `acksDue` returns the acks owed. Every ack leaves as an `ack` effect, run by the
 * effects runner.
 *
 * The decision is made inside the store transaction that commits it, on the record as it is then, so a Progress
 * committed just before (assigned → running) cannot turn a stale read into a dropped result. A completion is accepted in any state in which the executor
 * may hold the task — claimed (lost or rebuilt meanwhile), assigned, running — when its attempt is the persisted one,
 * or any attempt when the record has no attempt history (rebuilt from chain after a store wipe: the executor's
 * attempt becomes the persisted one). A retryable failure coded SHUTTING_DOWN (the executor gave the run back
 * because it is going) is re-dispatched without counting toward max_dispatch_attempts.
 */
import type { ExecutorEvent } from '../executor/messages.ts';
import { errorText } from '../internal/errors.ts';
import { doneKey, inflightKey } from '../store/keys.ts';
import { DoneSchema, type Inflight, InflightSchema } from '../store/records.ts';
import { MAX_REF_CHARS, resultRefOf } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import { type Decision, type Effect, effects, followUp, rerunOrFail } from './effects.ts';
import type { Recheck } from './finish.ts';
import type { LinkView } from './link.ts';
import { type LifecycleOptions, retryDelayMs } from './options.ts';
import {
  COMPLETABLE_STATES,
  canTransition,
  EXECUTING_STATES,
  FINISH_TX_STATES,
  FINISHING_STATES,
} from './transitions.ts';
import { commit, retryOrFail, uncountedDispatch } from './records.ts';
import type { EffectsRunner } from './runner.ts';

type CompletionEvent = Extract<ExecutorEvent, { type: 'completion' }>;
type RejectedEvent = Extract<ExecutorEvent, { type: 'completionRejected' }>;
type CompletionResult = CompletionEvent['result'];

/** What a Completion (or the bridge's refusal of one) did to its record. */
export type Verdict =
  /** Committed: the record moved to `to`; `refusal` set when the lifecycle refused the result itself. */
  | { kind: 'applied'; next: Inflight; refusal?: { code: string; reason: string } }
  /** Already applied (or the activity already ended here with an outcome of ours: completed or failed). */
  | { kind: 'duplicate'; state: string }
  /**
   * The activity ended here without an outcome of ours (expired, lost, finished elsewhere: the executor was sent a
   * Cancel): this worker no longer holds it, the result can go nowhere.
   */
  | { kind: 'notHeld'; outcome: string }
  /** Another attempt than the one held: the current attempt is still the executor's to finish. */
  | { kind: 'stale'; held: number }
  /** No record accepts it yet (none, or still claiming). */
  | { kind: 'pending'; state: string };

/** One remembered Completion, until its verdict is definite. */
interface Received {
  attempt: number;
  result: CompletionResult;
  firstAtMs: number;
  /** Re-check rounds that found no record for it. */
  misses: number;
}

export interface Completions {
  /** A Completion the bridge validated: decided, committed, acknowledged, its finishing tx sent. */
  onCompletion(ev: CompletionEvent): Promise<void>;
  /** A Completion the bridge refused (the executor was told): re-dispatch while attempts remain, else fail. */
  onRejected(ev: RejectedEvent): Promise<void>;
  /** Re-applies every remembered Completion not settled yet, reading the chain for activities not held. */
  recheck(): Promise<void>;
  /** Remembered Completions (received, not yet settled). */
  pending(): number;
  /** The acks owed to Completions whose record left `completing`/`failing`, as effects (run after tx events). */
  acksDue(): Effect[];
}

/**
 * The bridge refused a Completion (the executor was told): the run it reports is over, so a record the executor
 * held for that attempt is re-dispatched while dispatches remain, else failed; any other record does not wait on
 * it. PURE.
 */
export function decideCompletionRejected(
  r: Inflight | undefined,
  ev: Pick<RejectedEvent, 'activity_id' | 'attempt' | 'code' | 'reason'>,
  f: { opts: Pick<LifecycleOptions, 'maxDispatchAttempts' | 'heartbeatIntervalMs'>; nowMs: number },
): Decision {
  const held = r?.dispatch_attempts ?? 0;
  if (!r || !EXECUTING_STATES.has(r.state) || (held !== 0 && held !== ev.attempt))
    return effects({
      kind: 'log',
      level: 'warn',
      message: 'completion refused by the bridge; the record does not wait on it (nothing to do)',
      fields: {
        activity_id: ev.activity_id,
        attempt: ev.attempt,
        code: ev.code,
        state: r?.state ?? 'none',
        current: r?.dispatch_attempts,
      },
    });
  const base = { ...r, dispatch_attempts: held === 0 ? ev.attempt : held, updated_at_ms: f.nowMs };
  const where = retryOrFail(base, f.opts.maxDispatchAttempts, `${ev.code}: ${ev.reason}`.slice(0, MAX_REF_CHARS));
  const next: Inflight = { ...base, ...where.patch, state: where.to };
  return rerunOrFail(
    next,
    {
      claimed: 'completion refused by the bridge; re-dispatching',
      failing: 'completion refused by the bridge; no attempts left, failing',
    },
    { activity_id: ev.activity_id, attempt: ev.attempt, code: ev.code, reason: ev.reason },
    retryDelayMs(f.opts, next),
  );
}

/**
 * The failure code of a run the executor gave back unfinished because it is shutting down (the proto's graceful
 * shutdown; the SDK's code for runs aborted by `stop()` and for assignments that arrive while stopping).
 */
export const SHUTTING_DOWN = 'SHUTTING_DOWN';

/** Re-check rounds a Completion for an activity we do not hold is kept before it is refused as NOT_HELD. */
export const NOT_HELD_ROUNDS = 2;

/** The completion handler. */
export function createCompletions(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'now' | 'log' | 'metrics'>,
  deps: { runner: Pick<EffectsRunner, 'run'>; link: LinkView; recheck: Recheck },
): Completions {
  const { opts, store, now, log, metrics } = ctx;
  const received = new Map<string, Received>();
  /** Activity id → attempt of an accepted Completion whose ack waits for its record's tx (see the file comment). */
  const owed = new Map<string, number>();

  function acksDue(): Effect[] {
    const out: Effect[] = [];
    for (const [id, attempt] of [...owed]) {
      const r = store.get(inflightKey(id), InflightSchema);
      if (r && FINISH_TX_STATES.has(r.state)) continue;
      owed.delete(id);
      out.push(ack(id, attempt, true));
    }
    return out;
  }

  /** The ack of an accepted Completion now, or none yet: owed until its record's outcome is on chain. */
  function accept(id: string, attempt: number, state: string): Effect[] {
    if ((FINISH_TX_STATES as ReadonlySet<string>).has(state)) {
      owed.set(id, attempt);
      return [];
    }
    owed.delete(id);
    return [ack(id, attempt, true)];
  }

  /** The record `r` after a result of `attempt`: where it goes, or why it does not move. */
  function plan(
    r: Inflight,
    attempt: number,
    result: CompletionResult,
  ): Verdict | { to: Inflight; refusal?: { code: string; reason: string } } {
    const held = r.dispatch_attempts ?? 0;
    if (FINISHING_STATES.has(r.state)) return { kind: 'duplicate', state: r.state };
    if (!COMPLETABLE_STATES.has(r.state)) return { kind: 'pending', state: r.state };
    if (held !== 0 && attempt !== held) return { kind: 'stale', held };
    const base = { ...r, dispatch_attempts: held === 0 ? attempt : held, updated_at_ms: now() };
    const redo = (code: string, reason: string) => {
      const where = retryOrFail(base, opts.maxDispatchAttempts, `${code}: ${reason}`.slice(0, MAX_REF_CHARS));
      return { to: { ...base, ...where.patch, state: where.to } };
    };
    if (result.ok) {
      const ref = resultRefOf(result.output_refs);
      if (ref.length > MAX_REF_CHARS) {
        const reason = `result reference of ${ref.length} chars (max ${MAX_REF_CHARS})`;
        return { ...redo('OUTPUT_TOO_LARGE', reason), refusal: { code: 'OUTPUT_TOO_LARGE', reason } };
      }
      return { to: { ...base, state: 'completing', result_ref: ref } };
    }
    // The executor gave the task back unfinished because it is shutting down: not the task's fault, not counted.
    if (result.retryable && result.code === SHUTTING_DOWN) {
      const given = { ...base, ...uncountedDispatch(base) };
      const where = retryOrFail(given, opts.maxDispatchAttempts, `${result.code}: ${result.message}`);
      return { to: { ...given, ...where.patch, state: where.to } };
    }
    if (result.retryable) return redo(result.code, result.message);
    return {
      to: { ...base, state: 'failing', fail_reason: `${result.code}: ${result.message}`.slice(0, MAX_REF_CHARS) },
    };
  }

  /** Decides and commits in one store transaction. */
  async function decide(id: string, attempt: number, result: CompletionResult): Promise<Verdict> {
    return await store.transact((tx): Verdict => {
      const r = tx.get(inflightKey(id), InflightSchema);
      if (!r) {
        const done = tx.get(doneKey(id), DoneSchema);
        if (!done) return { kind: 'pending', state: 'none' };
        return done.outcome === 'completed' || done.outcome === 'failed'
          ? { kind: 'duplicate', state: `done:${done.outcome}` }
          : { kind: 'notHeld', outcome: done.outcome };
      }
      const p = plan(r, attempt, result);
      if ('kind' in p) return p;
      if (!canTransition(r.state, p.to.state)) return { kind: 'pending', state: r.state };
      tx.put(inflightKey(id), p.to);
      return { kind: 'applied', next: p.to, ...(p.refusal ? { refusal: p.refusal } : {}) };
    });
  }

  const ack = (id: string, attempt: number, accepted: boolean, code?: string, reason?: string): Effect => ({
    kind: 'ack',
    id,
    attempt,
    accepted,
    ...(code ? { code } : {}),
    ...(reason ? { reason } : {}),
  });

  /** After a commit: the next step of the record (finishing tx, or a deferred re-dispatch). */
  async function follow(next: Inflight): Promise<void> {
    deps.link.release(next.activity_id);
    await deps.runner.run(followUp(next, retryDelayMs(opts, next)));
  }

  /** Applies a remembered Completion; returns whether it is settled (forgotten). */
  async function apply(id: string, rec: Received, why: string, first = false): Promise<boolean> {
    const { attempt, result } = rec;
    const v = await decide(id, attempt, result);
    // Counted once per Completion: at its definite verdict, or as `pending` when first kept for the re-check.
    if (v.kind !== 'pending' || first)
      metrics.executorCompletions.inc({
        outcome:
          v.kind === 'applied' ? (v.refusal ? 'refused' : 'accepted') : v.kind === 'notHeld' ? 'not_held' : v.kind,
      });
    switch (v.kind) {
      case 'applied': {
        const fields = { activity_id: id, attempt, state: v.next.state, why };
        let acks: Effect[];
        if (v.refusal) {
          log.warn('completion refused', { ...fields, code: v.refusal.code, reason: v.refusal.reason });
          acks = [ack(id, attempt, false, v.refusal.code, v.refusal.reason)];
        } else {
          if (result.ok) log.info('executor completed activity', { ...fields, result_ref: v.next.result_ref ?? '' });
          else log.warn('executor failed activity', { ...fields, code: result.code, message: result.message });
          acks = accept(id, attempt, v.next.state);
        }
        received.delete(id);
        await deps.runner.run(acks);
        await follow(v.next);
        return true;
      }
      case 'duplicate': {
        log.info('completion already applied', { activity_id: id, attempt, state: v.state, why });
        const acks = accept(id, attempt, v.state);
        received.delete(id);
        await deps.runner.run(acks);
        return true;
      }
      case 'notHeld': {
        log.info('completion for an activity that ended here without it; refused as not held', {
          activity_id: id,
          attempt,
          outcome: v.outcome,
          why,
        });
        received.delete(id);
        await deps.runner.run([ack(id, attempt, false, 'NOT_HELD', `the activity already ended here (${v.outcome})`)]);
        return true;
      }
      case 'stale': {
        const reason = `attempt ${attempt} is not the current attempt ${v.held}`;
        log.warn('completion of another attempt; refused', { activity_id: id, attempt, current: v.held, why });
        received.delete(id);
        await deps.runner.run([ack(id, attempt, false, 'STALE_ATTEMPT', reason)]);
        return true;
      }
      case 'pending':
        log.warn('completion for an activity not held (yet); kept for the re-check', {
          activity_id: id,
          attempt,
          state: v.state,
          why,
        });
        return false;
    }
  }

  return {
    async onCompletion(ev) {
      const rec: Received = { attempt: ev.attempt, result: ev.result, firstAtMs: now(), misses: 0 };
      received.set(ev.activity_id, rec);
      await apply(
        ev.activity_id,
        rec,
        ev.assigned_here === false ? 'completion (earlier wcp life)' : 'completion',
        true,
      );
    },

    async onRejected(ev) {
      metrics.executorCompletions.inc({ outcome: 'rejected_by_bridge' });
      const id = ev.activity_id;
      received.delete(id);
      const d = await commit(store, [id], (rs) => decideCompletionRejected(rs.get(id), ev, { opts, nowMs: now() }));
      if (d.writes.length) deps.link.release(id);
      await deps.runner.run(d.effects);
    },

    async recheck() {
      await deps.runner.run(acksDue()); // records that left completing/failing by a repair rather than a tx event
      for (const [id, rec] of [...received]) {
        try {
          const r = store.get(inflightKey(id), InflightSchema);
          if (r && COMPLETABLE_STATES.has(r.state))
            log.warn('the executor reported this activity finished but it is still only heartbeated; applying', {
              activity_id: id,
              state: r.state,
              attempt: rec.attempt,
              received_ms_ago: now() - rec.firstAtMs,
            });
          if (await apply(id, rec, 're-check')) continue;
          // Not held: the chain says whether it is ours (the repair rules rebuild the record if it is).
          await deps.recheck([id], 'completion for an activity not held');
          if (await apply(id, rec, 're-check after reading the chain')) continue;
          rec.misses += 1;
          if (rec.misses >= NOT_HELD_ROUNDS) {
            received.delete(id);
            metrics.executorCompletions.inc({ outcome: 'not_held' });
            log.warn('completion for an activity this worker does not hold; refused', { activity_id: id });
            await deps.runner.run([ack(id, rec.attempt, false, 'NOT_HELD', 'this worker does not hold the activity')]);
          }
        } catch (e) {
          log.warn('re-checking a received completion failed; will retry', { activity_id: id, error: errorText(e) });
        }
      }
    },

    pending: () => received.size,

    acksDue,
  };
}
