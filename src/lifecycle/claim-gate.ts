/**
 * The claim gate: claim only what can run now. A claim is allowed while the executor link is ready (connected and
 * handshaken; the built-in no-op test executor counts), has free credits beyond the claimed records already waiting
 * for it, serves the activity's type, and — when the activity needs storage (a `blob:` input, or a type whose
 * outputs the executor declares: its run gets presigned upload URLs) — the storage service answers as it should:
 * not while it is unreachable (`storage_unavailable`), refuses the worker itself (`storage_refused`: wrong
 * service, session refused), or has not answered its first probe yet (a short wait, no reason recorded).
 * Otherwise claims pause: the reason is logged at warn once per change and shown by the `wcp_claims_paused{reason}`
 * gauge.
 * Claim jobs recorded without their type (from chain events) have it read from the chain first, once.
 */
import { getHeader, readActivities } from '../chain/reads.ts';
import { claimJobKey, PREFIX } from '../store/keys.ts';
import { type ClaimJob, ClaimJobSchema } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import type { LinkView } from './link.ts';
import { listHeld } from './records.ts';

/** Why claims are paused. */
export type ClaimPause =
  | 'executor_not_ready'
  | 'no_executor_credits'
  | 'unsupported_type'
  | 'storage_unavailable'
  | 'storage_refused';
const REASONS: readonly ClaimPause[] = [
  'executor_not_ready',
  'no_executor_credits',
  'unsupported_type',
  'storage_unavailable',
  'storage_refused',
];

export interface ClaimGate {
  /** How many activities may be claimed now (0 = paused; the reason is recorded). */
  room(): number;
  /** Of `jobs` (in order), those that can run now; records the reason when none can. Reads missing types. */
  admit(jobs: ClaimJob[]): Promise<ClaimJob[]>;
  /** Records that claims run (nothing paused them this round). */
  open(): void;
  /** The current pause reason, or null. */
  reason(): ClaimPause | null;
}

/** Whether running the activity needs the storage service: a `blob:` input, or a type that declares outputs. */
export function needsStorage(
  job: Pick<ClaimJob, 'input_ref' | 'activity_type'>,
  link: Pick<LinkView, 'typeNeedsStorage'>,
): boolean {
  return (job.input_ref ?? '').startsWith('blob:') || link.typeNeedsStorage(job.activity_type ?? '');
}

/** The claim gate over the link view and the dispatch step's credits. */
export function createClaimGate(
  ctx: Pick<LifecycleContext, 'opts' | 'store' | 'rpc' | 'log' | 'metrics'>,
  deps: { link: LinkView; credits: () => number },
): ClaimGate {
  const { opts, store, rpc, log, metrics } = ctx;
  const { link } = deps;
  let current: ClaimPause | null = null;
  for (const r of REASONS) metrics.claimsPaused.set({ reason: r }, 0);

  function set(reason: ClaimPause | null, detail: Record<string, unknown> = {}): void {
    if (reason === current) return;
    const was = current;
    current = reason;
    for (const r of REASONS) metrics.claimsPaused.set({ reason: r }, r === reason ? 1 : 0);
    // A busy executor is ordinary backpressure (info); the other reasons mean work is waiting on something broken.
    if (reason === 'no_executor_credits') log.info('claims paused', { reason, ...detail });
    else if (reason) log.warn('claims paused', { reason, ...detail });
    else log.info('claims resumed', { was: was ?? '' });
  }

  /** Reads the type and input of jobs recorded without them, and stores them in the jobs. */
  async function readTypes(jobs: ClaimJob[]): Promise<ClaimJob[]> {
    const missing = jobs.filter((j) => j.activity_type === undefined).map((j) => j.activity_id);
    if (missing.length === 0) return jobs;
    const head = await getHeader(rpc, 'latest');
    const views = new Map((await readActivities(rpc, opts, missing, head.number)).map((v) => [v.activityId, v]));
    const filled = jobs.map((j) => {
      const v = views.get(j.activity_id);
      return v && j.activity_type === undefined ? { ...j, activity_type: v.activityType, input_ref: v.inputRef } : j;
    });
    await store.transact((tx) => {
      for (const j of filled) {
        if (!views.has(j.activity_id)) continue;
        const cur = tx.get(claimJobKey(j.activity_id), ClaimJobSchema);
        if (cur && cur.activity_type === undefined) tx.put(claimJobKey(j.activity_id), { ...cur, ...j });
      }
    });
    return filled;
  }

  return {
    room() {
      if (!link.ready()) {
        set('executor_not_ready');
        return 0;
      }
      // Claimed records not yet dispatched (and claims in flight) will take credits first.
      const waitingRecords = listHeld(store).filter(
        (r) => r.state === 'claiming' || (r.state === 'claimed' && !link.holds(r.activity_id)),
      );
      const waiting = waitingRecords.length;
      const free = deps.credits() - waiting;
      if (free <= 0) {
        // Claimed work held back by storage is what stops claims then, not a busy executor.
        const storage = link.storage().state;
        const onStorage =
          (storage === 'down' || storage === 'refused') && waitingRecords.some((r) => needsStorage(r, link));
        if (onStorage) set(storage === 'refused' ? 'storage_refused' : 'storage_unavailable', { waiting });
        else set('no_executor_credits', { credits: deps.credits(), waiting });
        return 0;
      }
      return free;
    },
    async admit(jobs) {
      const known = await readTypes(jobs);
      let noStorage = 0;
      let unserved = 0;
      const storage = link.storage();
      const ok = known.filter((j) => {
        if (!link.serves(j.activity_type ?? '')) {
          unserved++;
          return false;
        }
        if (needsStorage(j, link) && storage.state !== 'up') {
          noStorage++;
          return false;
        }
        return true;
      });
      // Its first answer is due within a round trip: wait without calling it a pause.
      if (ok.length === 0 && noStorage > 0 && storage.state === 'pending') return ok;
      if (ok.length === 0 && jobs.length > 0) {
        const reason =
          noStorage === 0
            ? 'unsupported_type'
            : storage.state === 'refused'
              ? 'storage_refused'
              : 'storage_unavailable';
        set(reason, {
          jobs: jobs.length,
          unsupported_type: unserved,
          needing_storage: noStorage,
          ...(storage.state === 'refused' ? { storage_refusal: storage.reason } : {}),
        });
      }
      return ok;
    },
    open() {
      set(null);
    },
    reason: () => current,
  };
}

/** The claim jobs to consider this round: more than wanted, so jobs that cannot run here do not block the rest. */
export function claimCandidates(store: LifecycleContext['store'], want: number): ClaimJob[] {
  return store.list(PREFIX.claimJob, ClaimJobSchema, { limit: Math.max(want * 4, 64) }).map((e) => e.value);
}
