/**
 * The dispatch step: offers claimed activities to the executor, as many as it has credits for. A record is ready
 * when its details are read from the chain, no tx is in flight for it, it has not expired, and its retry delay
 * (after a retryable refusal or failure) has passed. The whole round is one store transaction.
 */
import type { LifecycleContext } from './context.ts';
import { expiredNow } from './expiry.ts';
import { listHeld, transitionMany } from './records.ts';

export interface DispatchStep {
  /** Assigns ready records to the executor; does nothing unless `running`. */
  run(running: boolean): Promise<void>;
  /** The executor's free capacity, as it last reported it. */
  credits(): number;
  setCredits(n: number): void;
  /** Holds `id` back from dispatch for `delayMs`. */
  defer(id: string, delayMs: number): void;
  /** Drops the retry delay of an activity that ended. */
  forget(id: string): void;
}

/** A dispatch step with no credits until the executor reports some. */
export function createDispatchStep(
  ctx: Pick<LifecycleContext, 'store' | 'now' | 'clock' | 'tracker' | 'executor' | 'log'>,
): DispatchStep {
  const { store, now, clock, tracker, executor, log } = ctx;
  let credits = 0;
  /** Activity id → earliest wall time for the next dispatch attempt. */
  const after = new Map<string, number>();
  return {
    async run(running) {
      if (credits <= 0 || !running) return;
      const t = now();
      const ready: string[] = [];
      for (const r of listHeld(store)) {
        if (ready.length >= credits) break;
        if (r.state !== 'claimed' || tracker.has(r.activity_id)) continue;
        if ((after.get(r.activity_id) ?? 0) > t) continue;
        if (expiredNow(ctx, r)) continue;
        if (!r.activity_type || r.expires_at_s === undefined) continue; // details not read yet
        ready.push(r.activity_id);
      }
      const assigned = await transitionMany(store, now, ready, ['claimed'], 'assigned', (r) => ({
        dispatch_attempts: (r.dispatch_attempts ?? 0) + 1,
      }));
      for (const next of assigned) {
        credits--;
        executor.assign({
          activity_id: next.activity_id,
          activity_type: next.activity_type ?? '',
          input_ref: next.input_ref ?? '',
          queue_name: next.queue_name,
          ...(next.workflow_instance && next.workflow_instance !== '0'
            ? { workflow_instance: next.workflow_instance }
            : {}),
          deadline_unix_ms: Math.floor(((next.expires_at_s ?? 0) - clock.skewS()) * 1000),
          attempt: next.dispatch_attempts ?? 1,
        });
        log.info('activity assigned to executor', { activity_id: next.activity_id, attempt: next.dispatch_attempts });
      }
    },
    credits: () => credits,
    setCredits(n) {
      credits = Math.max(0, n);
    },
    defer(id, delayMs) {
      after.set(id, now() + delayMs);
    },
    forget(id) {
      after.delete(id);
    },
  };
}
