/**
 * The executor's messages applied to the lifecycle: link state, credits and storage feed dispatch and the claim gate;
 * progress and refusals move records; Completions go to `completions.ts`; a Resync (and a new connection without
 * one) says which executing records the executor still holds — re-offered with their attempt, never run again —
 * and which it lost: re-dispatched while dispatches remain (`maxDispatchAttempts` counts them), else failed.
 */
import type { ExecutorEvent } from '../executor/messages.ts';
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { MAX_REF_CHARS } from './calls.ts';
import type { Completions } from './completions.ts';
import type { LifecycleContext } from './context.ts';
import type { DispatchStep } from './dispatch.ts';
import type { Finish } from './finish.ts';
import type { LinkView } from './link.ts';
import { retryDelayMs } from './options.ts';
import { listHeld, retryOrFail, transition } from './records.ts';
import { EXECUTING_STATES } from './transitions.ts';

/** Applies one executor message. */
export type OnExecutorEvent = (ev: ExecutorEvent) => Promise<void>;

/** The executor-message handler. */
export function createExecutorEvents(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'now' | 'log' | 'metrics'>,
  deps: { finish: Finish; dispatch: DispatchStep; link: LinkView; completions: Completions },
): OnExecutorEvent {
  const { opts, store, now, log, metrics } = ctx;
  const { finish, dispatch, link, completions } = deps;
  const move = transition.bind(null, store, now);
  /** A Resync arrived since the link last became not ready (the bridge sends it before `ready`). */
  let resynced = false;

  async function follow(next: Inflight | null): Promise<void> {
    if (!next) return;
    if (next.state === 'claimed') dispatch.defer(next.activity_id, retryDelayMs(opts, next));
    else if (next.state === 'failing') await finish.submitFinish(next);
  }

  /**
   * The executor no longer holds `id`: re-dispatch while dispatches remain (and re-offers are on), else fail;
   * `counted: false` for a run an earlier wcp life dispatched (not held after the restart). Decided and moved in one store transaction, straight to `claimed` or `failing`: a record passing through
   * `claimed` on its way to `failing` would be picked up by the dispatch loop in between and run again.
   */
  async function lose(id: string, why: string, counted = true): Promise<void> {
    link.release(id);
    dispatch.forget(id);
    const reason = `EXECUTOR_LOST: ${why}`.slice(0, MAX_REF_CHARS);
    const next = await store.transact((tx) => {
      const found = tx.get(inflightKey(id), InflightSchema);
      if (!found || !EXECUTING_STATES.has(found.state)) return null;
      // A run lost across a wcp restart is not the task's fault (wcp, or wcp and its executor, went down): that
      // dispatch does not count toward max_dispatch_attempts, as a refused one does not.
      const r = counted ? found : { ...found, refused_dispatches: (found.refused_dispatches ?? 0) + 1 };
      const where = opts.reofferLostTasks
        ? retryOrFail(r, opts.maxDispatchAttempts, reason)
        : { to: 'failing' as const, patch: { fail_reason: reason } };
      const n: Inflight = { ...r, ...where.patch, state: where.to, updated_at_ms: now() };
      tx.put(inflightKey(id), n);
      return n;
    });
    if (!next) return;
    if (next.state === 'claimed') {
      log.warn('executor lost the task; re-dispatching', { activity_id: id, attempt: next.dispatch_attempts, why });
    } else {
      log.warn('executor lost the task; no dispatch left, failing', {
        activity_id: id,
        attempt: next.dispatch_attempts,
      });
    }
    await follow(next);
  }

  /**
   * What the executor holds, after a (re)connect: `held` from its Resync (empty when the bridge sent none),
   * `lost` the bridge's own verdicts, `known` the ids the bridge still has in flight.
   */
  async function reconcileHeld(held: readonly string[], lost: readonly string[], known: readonly string[]) {
    link.setHeld(held);
    const heldSet = new Set(held);
    const knownSet = new Set(known);
    for (const id of lost) await lose(id, 'the executor no longer holds the task');
    for (const r of listHeld(store)) {
      if (!EXECUTING_STATES.has(r.state) || knownSet.has(r.activity_id)) continue;
      if (heldSet.has(r.activity_id)) {
        // Held by the executor, unknown to this bridge (assigned by an earlier wcp life): the same run answers.
        if (!dispatch.assignedHere(r.activity_id)) dispatch.reoffer(r);
      } else if (!dispatch.assignedHere(r.activity_id)) {
        await lose(r.activity_id, 'not in the executor Resync after a wcp restart', false);
      }
    }
  }

  return async (ev) => {
    switch (ev.type) {
      case 'credits':
        dispatch.setCredits(ev.available, ev.assigns_seen);
        break;
      case 'state': {
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
        break;
      }
      case 'storage': {
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
        break;
      }
      case 'accepted':
        break;
      case 'progress':
        await move(ev.activity_id, ['assigned'], 'running');
        break;
      case 'assignRejected':
        if (ev.reason === 'duplicate') break; // the bridge has it already (a re-offer it knew)
        if (ev.retryable) {
          // Refused before it reached the executor: the attempt number stays spent (a completion names the attempt
          // it ran; numbers never go back), but the dispatch does not count toward max_dispatch_attempts.
          const reoffered = link.holds(ev.activity_id);
          await move(ev.activity_id, ['assigned'], 'claimed', (r) =>
            reoffered ? {} : { refused_dispatches: (r.refused_dispatches ?? 0) + 1 },
          );
          dispatch.defer(ev.activity_id, retryDelayMs(opts, { dispatch_attempts: 1 } as Inflight));
        } else if (ev.reason === 'expired') {
          await finish.finish(ev.activity_id, 'expired', {}, 'executor refused: deadline passed');
        } else {
          const next = await move(ev.activity_id, ['assigned'], 'failing', {
            fail_reason: `EXECUTOR_REFUSED: ${ev.reason}${ev.detail ? ` (${ev.detail})` : ''}`,
          });
          if (next) await finish.submitFinish(next);
        }
        break;
      case 'completion':
        await completions.onCompletion(ev);
        break;
      case 'completionRejected':
        await completions.onRejected(ev);
        break;
      case 'resync':
        resynced = true;
        await reconcileHeld(ev.held_activity_ids ?? [], ev.lost_activity_ids, ev.running_activity_ids);
        break;
      case 'rejected':
        metrics.executorRejected.inc();
        break;
      default:
        break;
    }
  };
}
