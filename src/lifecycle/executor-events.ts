/**
 * The executor's messages applied to the lifecycle: link state, credits and storage feed dispatch and the claim gate;
 * progress and refusals move records; Completions go to `completions.ts`; a Resync (and a new connection without
 * one) says which executing records the executor still holds — re-offered with their attempt, never run again —
 * and which it lost: re-dispatched while dispatches remain, else failed. Record changes are pure decisions
 * (`decideLost`, `decideAssignRejected`, `decideProgress`) committed by the runner.
 *
 * A loss is charged to the right activity (`Loss`): an executor that shut down on purpose (a clean stream end) or a
 * wcp restart charges nothing; an executor crash charges a task only when it held that task alone. Tasks lost
 * together in a crash are not charged; those that were running (a Progress seen; all of them when none was, or a
 * task lost in a crash before) are isolated — dispatched alone from then on (`dispatch.ts`) — so a second crash
 * with one of them is conclusive, and only the task that crashes its executor is failed on chain.
 */
import type { ExecutorEvent, LostCause } from '../executor/messages.ts';
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { MAX_REF_CHARS } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import type { DispatchStep } from './dispatch.ts';
import { type Decision, endDecision, followUp, NOTHING, rerunOrFail } from './effects.ts';
import type { LinkView } from './link.ts';
import { type LifecycleOptions, retryDelayMs } from './options.ts';
import { listHeld, moved, retryOrFail, uncountedDispatch } from './records.ts';
import type { EffectsRunner } from './runner.ts';
import { EXECUTING_STATES } from './transitions.ts';

type AssignRejected = Extract<ExecutorEvent, { type: 'assignRejected' }>;
type Opts = Pick<LifecycleOptions, 'maxDispatchAttempts' | 'reofferLostTasks' | 'heartbeatIntervalMs'>;

/**
 * How a task the executor no longer holds was lost:
 * - `restart`: a run an earlier wcp life dispatched, not held after this wcp started (wcp, or wcp and its executor,
 *   went down: not the task's fault);
 * - `graceful`: the executor shut down on purpose (it ended its stream cleanly) without finishing it;
 * - `crash`: the executor's stream failed. `alone`: the executor held no other task (the loss is the task's);
 *   `anyRunning`: some task lost in the same crash had reported Progress (was known to be running).
 */
export type Loss = { kind: 'restart' | 'graceful' } | { kind: 'crash'; alone: boolean; anyRunning: boolean };

/**
 * The executor no longer holds `r`: re-dispatch while dispatches remain (and re-offers are on), else fail. Only a
 * crash that lost `r` alone counts toward max_dispatch_attempts (see `Loss`); a crash that lost it beside others
 * isolates it when it was running, when no task lost with it was known to be running, or when a crash lost it
 * before (a task that crashes its executor before its first Progress is caught on its second crash). Straight to
 * `claimed` or `failing`: a record passing through `claimed` on its way to `failing` would be picked up by the
 * dispatch loop in between and run again. PURE.
 */
export function decideLost(r: Inflight | undefined, why: string, loss: Loss, opts: Opts, nowMs: number): Decision {
  if (!r || !EXECUTING_STATES.has(r.state)) return NOTHING;
  const reason = `EXECUTOR_LOST: ${why}`.slice(0, MAX_REF_CHARS);
  const crash = loss.kind === 'crash';
  const counted = crash && loss.alone;
  const crashes = (r.crash_losses ?? 0) + (crash ? 1 : 0);
  const isolate =
    r.isolate === true ||
    (crash && (loss.alone || r.state === 'running' || !loss.anyRunning || (r.crash_losses ?? 0) > 0));
  // An uncounted dispatch is given back, as a refused one is: the attempt number stays spent.
  const base: Inflight = {
    ...r,
    ...(counted ? {} : uncountedDispatch(r)),
    ...(crashes > 0 ? { crash_losses: crashes } : {}),
    ...(isolate ? { isolate: true } : {}),
  };
  const where = opts.reofferLostTasks
    ? retryOrFail(base, opts.maxDispatchAttempts, reason)
    : { to: 'failing' as const, patch: { fail_reason: reason } };
  const next: Inflight = { ...base, ...where.patch, state: where.to, updated_at_ms: nowMs };
  const how = { cause: loss.kind, counted, ...(isolate ? { isolated: true } : {}) };
  const fields =
    next.state === 'claimed'
      ? { activity_id: r.activity_id, attempt: next.dispatch_attempts, why, ...how }
      : { activity_id: r.activity_id, attempt: next.dispatch_attempts, ...how };
  return rerunOrFail(
    next,
    {
      claimed: 'executor lost the task; re-dispatching',
      failing: 'executor lost the task; no dispatch left, failing',
    },
    fields,
    retryDelayMs(opts, next),
  );
}

/** The executor's Progress: an assigned task runs. PURE. */
export function decideProgress(r: Inflight | undefined, nowMs: number): Decision {
  const next = moved(r, ['assigned'], 'running', nowMs);
  return next ? { writes: [{ kind: 'put', record: next }], effects: [] } : NOTHING;
}

/**
 * The bridge refused an assignment (not a duplicate): a retryable refusal goes back to `claimed` (deferred; counted
 * as a dispatch only when it was a re-offer `reoffered`), a passed deadline ends the record `expired`, any other
 * refusal fails it. An `expired` refusal for a record the executor cannot hold (ended, moved on) changes nothing.
 * PURE.
 */
export function decideAssignRejected(
  id: string,
  r: Inflight | undefined,
  ev: Pick<AssignRejected, 'reason' | 'retryable' | 'detail'>,
  f: { opts: Opts; nowMs: number; reoffered: boolean },
): Decision {
  if (ev.retryable) {
    // Refused before it reached the executor: the attempt number stays spent (a completion names the attempt it
    // ran; numbers never go back), but the dispatch does not count toward max_dispatch_attempts.
    const next = moved(r, ['assigned'], 'claimed', f.nowMs, (cur) => (f.reoffered ? {} : uncountedDispatch(cur)));
    return {
      writes: next ? [{ kind: 'put', record: next }] : [],
      effects: [{ kind: 'defer', id, delayMs: retryDelayMs(f.opts, { dispatch_attempts: 1 } as Inflight) }],
    };
  }
  if (ev.reason === 'expired')
    // Only a task the executor may hold is ended: a late refusal must not overwrite a done record or drop a
    // record that moved on (a resume still owed).
    return r && EXECUTING_STATES.has(r.state)
      ? endDecision(id, r, 'expired', f.nowMs, {}, 'executor refused: deadline passed')
      : NOTHING;
  const next = moved(r, ['assigned'], 'failing', f.nowMs, {
    fail_reason: `EXECUTOR_REFUSED: ${ev.reason}${ev.detail ? ` (${ev.detail})` : ''}`,
  });
  return next ? { writes: [{ kind: 'put', record: next }], effects: followUp(next, 0) } : NOTHING;
}

/** The executor messages a decider here takes, each with its handler (the manager's event table routes them). */
export type ExecutorHandlers = {
  [T in 'state' | 'credits' | 'storage' | 'progress' | 'assignRejected' | 'resync' | 'rejected']: (
    ev: Extract<ExecutorEvent, { type: T }>,
  ) => Promise<void>;
};

/** The executor-message handlers. */
export function createExecutorEvents(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'now' | 'log' | 'metrics'>,
  deps: { runner: Pick<EffectsRunner, 'decide'>; dispatch: DispatchStep; link: LinkView },
): ExecutorHandlers {
  const { opts, store, now, log, metrics } = ctx;
  const { runner, dispatch, link } = deps;
  /** A Resync arrived since the link last became not ready (the bridge sends it before `ready`). */
  let resynced = false;

  /** The executor no longer holds `id` (see `decideLost`). */
  async function lose(id: string, why: string, loss: Loss): Promise<void> {
    link.release(id);
    dispatch.forget(id);
    await runner.decide([id], (rs) => decideLost(rs.get(id), why, loss, opts, now()));
  }

  /**
   * What the executor holds, after a (re)connect: `held` from its Resync (empty when the bridge sent none),
   * `lost` the bridge's own verdicts (lost as `cause` says), `known` the ids the bridge still has in flight.
   */
  async function reconcileHeld(
    held: readonly string[],
    lost: readonly string[],
    known: readonly string[],
    cause: LostCause = 'crash',
  ) {
    link.setHeld(held);
    const heldSet = new Set(held);
    const knownSet = new Set(known);
    // Read before any of them moves: whether the crash took a task known to be running (its Progress seen).
    const anyRunning = lost.some((id) => store.get(inflightKey(id), InflightSchema)?.state === 'running');
    const loss: Loss =
      cause === 'graceful'
        ? { kind: 'graceful' }
        : { kind: 'crash', alone: lost.length === 1 && known.length === 0, anyRunning };
    const why =
      loss.kind !== 'crash'
        ? 'the executor shut down (closed its stream) without finishing the task'
        : loss.alone
          ? 'the executor crashed while holding only this task'
          : `the executor crashed while holding this task and ${lost.length + known.length - 1} other(s)`;
    for (const id of lost) await lose(id, why, loss);
    for (const r of listHeld(store)) {
      if (!EXECUTING_STATES.has(r.state) || knownSet.has(r.activity_id)) continue;
      if (heldSet.has(r.activity_id)) {
        // Held by the executor, unknown to this bridge (assigned by an earlier wcp life): the same run answers.
        if (!dispatch.assignedHere(r.activity_id)) dispatch.reoffer(r);
      } else if (!dispatch.assignedHere(r.activity_id)) {
        await lose(r.activity_id, 'not in the executor Resync after a wcp restart', { kind: 'restart' });
      }
    }
  }

  return {
    async credits(ev) {
      dispatch.setCredits(ev.available, ev.assigns_seen);
    },
    async state(ev) {
      log.info('executor link', {
        state: ev.state,
        ...(ev.executor_id ? { executor_id: ev.executor_id } : {}),
        ...(ev.detail ? { detail: ev.detail } : {}),
      });
      const becameReady = link.onState(ev);
      if (ev.state !== 'ready') {
        dispatch.setCredits(0);
        resynced = false;
      } else if (becameReady && !resynced) await reconcileHeld([], [], []);
    },
    async storage(ev) {
      const was = link.storage();
      link.setStorage(
        ev.available,
        ev.refused !== undefined ? { reason: ev.refused, detail: ev.detail ?? '' } : undefined,
      );
      const now = link.storage();
      if (now.state === 'up' && (was.state === 'down' || was.state === 'refused'))
        log.warn('storage service answers again', {});
      else if (now.state === 'down' && was.state !== 'down')
        log.warn('storage service unavailable', { ...(ev.detail ? { detail: ev.detail } : {}) });
      else if (now.state === 'refused' && (was.state !== 'refused' || was.reason !== now.reason))
        log.warn('storage service refuses this worker: claims and dispatches needing storage wait', {
          reason: now.reason,
          ...(ev.detail ? { detail: ev.detail } : {}),
        });
    },
    async progress(ev) {
      await runner.decide([ev.activity_id], (rs) => decideProgress(rs.get(ev.activity_id), now()));
    },
    async assignRejected(ev) {
      if (ev.reason === 'duplicate') return; // the bridge has it already (a re-offer it knew)
      const id = ev.activity_id;
      const reoffered = link.holds(id);
      await runner.decide([id], (rs) => decideAssignRejected(id, rs.get(id), ev, { opts, nowMs: now(), reoffered }));
    },
    async resync(ev) {
      resynced = true;
      await reconcileHeld(ev.held_activity_ids ?? [], ev.lost_activity_ids, ev.running_activity_ids, ev.lost_cause);
    },
    async rejected() {
      metrics.executorRejected.inc();
    },
  };
}
