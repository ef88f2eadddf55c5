/**
 * The executor's messages applied to the lifecycle: credits and link state feed dispatch; progress, refusals,
 * completions and lost tasks move records (a completion to `completing` / `failing`, then its tx is sent; a
 * retryable failure back to `claimed` for another dispatch, up to `maxDispatchAttempts`).
 */
import type { ExecutorEvent } from '../executor/messages.ts';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import { MAX_REF_CHARS, resultRefOf } from './calls.ts';
import type { LifecycleContext } from './context.ts';
import type { DispatchStep } from './dispatch.ts';
import type { Finish } from './finish.ts';
import { DISPATCH_RETRY_DELAY_MS } from './options.ts';
import { transition } from './records.ts';
import { EXECUTING_STATES } from './transitions.ts';

type Completion = Extract<ExecutorEvent, { type: 'completion' }>;

/** Applies one executor message. */
export type OnExecutorEvent = (ev: ExecutorEvent) => Promise<void>;

/** The executor-message handler. */
export function createExecutorEvents(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'now' | 'log' | 'metrics'>,
  deps: { finish: Finish; dispatch: DispatchStep },
): OnExecutorEvent {
  const { opts, store, now, log, metrics } = ctx;
  const { finish, dispatch } = deps;
  const move = transition.bind(null, store, now);

  async function onCompletion(id: string, attempt: number, result: Completion['result']): Promise<void> {
    const r = store.get(inflightKey(id), InflightSchema);
    if (!r || !EXECUTING_STATES.has(r.state)) {
      log.warn('completion for an activity not executing; ignored', { activity_id: id, state: r?.state ?? 'none' });
      return;
    }
    if (attempt !== (r.dispatch_attempts ?? 0)) {
      log.warn('completion of an earlier attempt; ignored', { activity_id: id, attempt, current: r.dispatch_attempts });
      return;
    }
    if (result.ok) {
      const ref = resultRefOf(result.output_refs);
      if (ref.length > MAX_REF_CHARS) {
        const next = await move(id, [r.state], 'failing', {
          fail_reason: `OUTPUT_TOO_LARGE: result reference of ${ref.length} chars (max ${MAX_REF_CHARS})`,
        });
        if (next) await finish.submitFinish(next);
        return;
      }
      const next = await move(id, [r.state], 'completing', { result_ref: ref });
      log.info('executor completed activity', { activity_id: id, result_ref: ref });
      if (next) await finish.submitFinish(next);
      return;
    }
    const attempts = r.dispatch_attempts ?? 1;
    if (result.retryable && attempts < opts.maxDispatchAttempts) {
      log.warn('executor failed activity (retryable); re-offering', {
        activity_id: id,
        code: result.code,
        attempt: attempts,
      });
      await move(id, [r.state], 'claimed');
      dispatch.defer(id, DISPATCH_RETRY_DELAY_MS * attempts);
      return;
    }
    const reason = `${result.code}: ${result.message}`.slice(0, MAX_REF_CHARS);
    log.warn('executor failed activity', { activity_id: id, code: result.code, message: result.message });
    const next = await move(id, [r.state], 'failing', { fail_reason: reason });
    if (next) await finish.submitFinish(next);
  }

  return async (ev) => {
    switch (ev.type) {
      case 'credits':
        dispatch.setCredits(ev.available);
        break;
      case 'state':
        log.info('executor link', {
          state: ev.state,
          ...(ev.executor_id ? { executor_id: ev.executor_id } : {}),
          ...(ev.detail ? { detail: ev.detail } : {}),
        });
        if (ev.state !== 'ready') dispatch.setCredits(0);
        break;
      case 'accepted':
        break;
      case 'progress':
        await move(ev.activity_id, ['assigned'], 'running');
        break;
      case 'assignRejected':
        if (ev.retryable) {
          // The bridge refuses before writing anything to the executor: that attempt number was never seen, so it is
          // given back (the executor's first sight of a task is attempt 1, and a completion names the attempt it ran).
          await move(ev.activity_id, ['assigned'], 'claimed', (r) => ({
            dispatch_attempts: Math.max(0, (r.dispatch_attempts ?? 1) - 1),
          }));
          dispatch.defer(ev.activity_id, DISPATCH_RETRY_DELAY_MS);
        } else if (ev.reason === 'expired') {
          await finish.finish(ev.activity_id, 'expired', {}, 'executor refused: deadline passed');
        } else if (ev.reason !== 'duplicate') {
          const next = await move(ev.activity_id, ['assigned'], 'failing', {
            fail_reason: `EXECUTOR_REFUSED: ${ev.reason}${ev.detail ? ` (${ev.detail})` : ''}`,
          });
          if (next) await finish.submitFinish(next);
        }
        break;
      case 'completion':
        await onCompletion(ev.activity_id, ev.attempt, ev.result);
        break;
      case 'resync':
        for (const id of ev.lost_activity_ids) {
          if (opts.reofferLostTasks) {
            const r = await move(id, ['assigned', 'running'], 'claimed');
            if (r) log.info('executor lost the task; re-offering', { activity_id: id });
          } else {
            const next = await move(id, ['assigned', 'running'], 'failing', {
              fail_reason: 'EXECUTOR_LOST: the executor restarted and lost the task',
            });
            if (next) await finish.submitFinish(next);
          }
        }
        break;
      case 'rejected':
        metrics.executorRejected.inc();
        break;
      default:
        break;
    }
  };
}
