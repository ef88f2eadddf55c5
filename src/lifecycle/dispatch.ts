/**
 * The dispatch step: offers claimed activities to the executor, as many as it has credits for. A record is ready
 * when its details are read from the chain, no tx is in flight for it, it has not expired, its retry delay
 * (after a retryable refusal or failure) has passed, and — when its run needs storage — the storage service
 * answers (while it is down or refuses the worker, claimed work waits, heartbeated, instead of being failed). Each dispatch's attempt number is committed (one store
 * transaction per round) before its assignment is sent, and never lowered afterwards.
 *
 * An activity the executor already holds (its Resync listed it: e.g. wcp restarted, or the record was rebuilt from
 * chain) is never dispatched anew: it is re-offered with its persisted attempt and `reoffer: true`, so the executor
 * answers with its one run; a re-offer takes no credit.
 *
 * An isolated record (`isolate`: suspected of crashing its executor, executor-events.ts) runs alone: while one is
 * ready, nothing new is assigned until the executor holds nothing, then it alone is assigned; while it runs, nothing
 * else is. So if the executor crashes again, the loss is conclusively the isolated task's.
 */
import type { TaskSpec } from '../executor/messages.ts';
import type { Inflight } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import { expiredNow } from './expiry.ts';
import { needsStorage } from './claim-gate.ts';
import type { LinkView } from './link.ts';
import { listHeld, transitionMany } from './records.ts';
import { EXECUTING_STATES } from './transitions.ts';

export interface DispatchStep {
  /** Assigns ready records to the executor (re-offers those it holds); does nothing unless `running`. */
  run(running: boolean): Promise<void>;
  /** Re-offers an executing record the executor holds but the bridge does not know (same attempt, no new run). */
  reoffer(r: Inflight): void;
  /** `id` was assigned or re-offered through the link in this wcp life (and has not ended since). */
  assignedHere(id: string): boolean;
  /** The executor's free capacity, as it last reported it. */
  credits(): number;
  /** The bridge's figure; with `assignsSeen`, assigns sent since it was computed are discounted (messages.ts). */
  setCredits(n: number, assignsSeen?: number): void;
  /** Holds `id` back from dispatch for `delayMs`. */
  defer(id: string, delayMs: number): void;
  /** Drops what is kept of an activity that ended or was lost. */
  forget(id: string): void;
}

/** A dispatch step with no credits until the executor reports some. */
export function createDispatchStep(
  ctx: Pick<LifecycleContext, 'store' | 'now' | 'clock' | 'tracker' | 'executor' | 'log'>,
  deps: { link: LinkView },
): DispatchStep {
  const { store, now, clock, tracker, executor, log } = ctx;
  let credits = 0;
  /** Non-re-offer assigns sent on this link (the bridge counts the same ones as `assigns_seen`). */
  let assignsSent = 0;
  /** Activity id → earliest wall time for the next dispatch attempt. */
  const after = new Map<string, number>();
  const here = new Set<string>();

  const spec = (r: Inflight, reoffer: boolean): TaskSpec => ({
    activity_id: r.activity_id,
    activity_type: r.activity_type ?? '',
    input_ref: r.input_ref ?? '',
    queue_name: r.queue_name,
    ...(r.workflow_instance && r.workflow_instance !== '0' ? { workflow_instance: r.workflow_instance } : {}),
    deadline_unix_ms: Math.floor(((r.expires_at_s ?? 0) - clock.skewS()) * 1000),
    // 0 on a record rebuilt from chain with no attempt history: the executor keeps its run's attempt.
    attempt: r.dispatch_attempts ?? 0,
    ...(reoffer ? { reoffer: true } : {}),
  });

  function reoffer(r: Inflight): void {
    here.add(r.activity_id);
    executor.assign(spec(r, true));
    // The bridge logs the re-offer when it sends one (a task already on the stream with its attempt needs none).
    log.debug('re-offer handed to the bridge', { activity_id: r.activity_id, attempt: r.dispatch_attempts });
  }

  return {
    async run(running) {
      if (!running) return;
      const t = now();
      let ready: string[] = [];
      const held: string[] = [];
      /** Tasks on the executor now; whether one of them is isolated; isolated records ready to go. */
      let busy = 0;
      let isolatedBusy = false;
      const isolated: string[] = [];
      for (const r of listHeld(store)) {
        if (EXECUTING_STATES.has(r.state)) {
          busy++;
          if (r.isolate === true) isolatedBusy = true;
          continue;
        }
        if (r.state !== 'claimed' || tracker.has(r.activity_id)) continue;
        if (expiredNow(ctx, r)) continue;
        if (!r.activity_type || r.expires_at_s === undefined) continue; // details not read yet
        if (deps.link.holds(r.activity_id)) {
          busy++;
          if (deps.link.ready()) held.push(r.activity_id);
          continue;
        }
        if ((after.get(r.activity_id) ?? 0) > t) continue;
        if (!deps.link.storageAvailable() && needsStorage(r, deps.link)) continue;
        if (r.isolate === true) isolated.push(r.activity_id);
        else if (ready.length < credits) ready.push(r.activity_id);
      }
      // An isolated task runs alone; one waiting stops new work (else it could wait forever) until the executor
      // is empty.
      if (isolatedBusy) ready = [];
      else if (isolated.length > 0) ready = busy === 0 && credits >= 1 ? isolated.slice(0, 1) : [];
      // Marked as assigned here BEFORE the store says `assigned`: a Resync handled while the commit resolves must
      // not take these records for runs of an earlier wcp life (and drop them as lost, uncounted).
      const marked = [...held, ...ready].filter((id) => !here.has(id));
      for (const id of marked) here.add(id);
      const reoffered = await transitionMany(store, now, held, ['claimed'], 'assigned');
      const assigned = await transitionMany(store, now, ready, ['claimed'], 'assigned', (r) => ({
        dispatch_attempts: (r.dispatch_attempts ?? 0) + 1,
      }));
      const moved = new Set([...reoffered, ...assigned].map((r) => r.activity_id));
      for (const id of marked) if (!moved.has(id)) here.delete(id);
      for (const r of reoffered) reoffer(r);
      for (const next of assigned) {
        credits--;
        assignsSent++;
        here.add(next.activity_id);
        executor.assign(spec(next, false));
        log.info('activity assigned to executor', {
          activity_id: next.activity_id,
          attempt: next.dispatch_attempts,
          ...(next.isolate === true ? { isolated: true } : {}),
        });
      }
    },
    reoffer,
    assignedHere: (id) => here.has(id),
    credits: () => credits,
    setCredits(n, assignsSeen) {
      // Assigns sent after the bridge computed `n` (they crossed its figure on the port) are not in it yet.
      credits = Math.max(0, n - (assignsSeen === undefined ? 0 : assignsSent - assignsSeen));
    },
    defer(id, delayMs) {
      after.set(id, now() + delayMs);
    },
    forget(id) {
      after.delete(id);
      here.delete(id);
    },
  };
}
