/**
 * The claim gate: claim only what can run now. A claim is allowed while the executor link is ready (connected and
 * handshaken; the built-in no-op test executor counts), has free credits beyond the claimed records already waiting
 * for it, serves the activity's type, and — when the activity needs storage (a `blob:` input, or a type whose
 * outputs the executor declares: its run gets presigned upload URLs) — the storage service answers as it should:
 * not while it is unreachable (`storage_unavailable`), refuses the worker itself (`storage_refused`: wrong
 * service, session refused), or has not answered its first probe yet (a short wait, no reason recorded).
 * Otherwise claims pause: the reason is held in the pause set (`pauses.ts`: logged once per change,
 * `wcp_claims_paused{reason}`) and released in the first round its cause is gone, whether or not a job is waiting.
 * Claim jobs recorded without their type (from chain events) have it read from the chain first, once.
 */
import { getHeader, readActivities } from '../chain/reads.ts';
import { claimJobKey, PREFIX } from '../store/keys.ts';
import { type ClaimJob, ClaimJobSchema } from '../store/records.ts';
import type { LifecycleContext } from './context.ts';
import type { LinkView } from './link.ts';
import { type ClaimPause, type ClaimPauses, createClaimPauses } from './pauses.ts';
import { listHeld } from './records.ts';

export type { ClaimPause } from './pauses.ts';

/** The reasons the gate decides about the link; the others belong to other parts (`pauses.ts`). */
const LINK_REASONS = ['executor_not_ready', 'no_executor_credits'] as const;
/** Reasons about the claimed records waiting for credits (held under their own source, see `only`). */
const WAITING_REASONS = ['storage_unavailable', 'storage_refused'] as const;
/** Reasons about the waiting jobs: judged only when there are jobs to admit. */
export const JOB_REASONS = ['unsupported_type', 'storage_unavailable', 'storage_refused'] as const;

export interface ClaimGate {
  /** How many activities may be claimed now (0 = paused; the reason is held, and released once it is not). */
  room(): number;
  /** Of `jobs` (in order), those that can run now; holds the reason when none can, releases it when some can. */
  admit(jobs: ClaimJob[]): Promise<ClaimJob[]>;
  /** No jobs wait: nothing is paused for a job's sake. */
  open(): void;
  /** The first reason held in the pause set, or null. */
  reason(): ClaimPause | null;
  /** The pause set the gate holds its reasons in. */
  readonly pauses: ClaimPauses;
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
  deps: { link: LinkView; credits: () => number; pauses?: ClaimPauses },
): ClaimGate {
  const { opts, store, rpc, log, metrics } = ctx;
  const { link } = deps;
  const pauses = deps.pauses ?? createClaimPauses({ log, metrics });

  /** Holds `reason` (one of `among`) and releases the others of `among`. */
  /** Holds `reason` (or nothing) and releases the rest of `among`, for `source` (a reason held by two checks holds while either does). */
  function only(
    among: readonly ClaimPause[],
    reason: ClaimPause | null,
    detail: Record<string, unknown> = {},
    source = 'gate',
  ): void {
    for (const r of among) if (r !== reason) pauses.set(r, false, {}, source);
    if (reason) pauses.set(reason, true, detail, source);
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
        only(WAITING_REASONS, null, {}, 'waiting');
        only(LINK_REASONS, 'executor_not_ready');
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
        if (onStorage) {
          only(LINK_REASONS, null);
          only(
            WAITING_REASONS,
            storage === 'refused' ? 'storage_refused' : 'storage_unavailable',
            { waiting },
            'waiting',
          );
        } else {
          only(WAITING_REASONS, null, {}, 'waiting');
          only(LINK_REASONS, 'no_executor_credits', { credits: deps.credits(), waiting });
        }
        return 0;
      }
      only(WAITING_REASONS, null, {}, 'waiting');
      only(LINK_REASONS, null);
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
        only(JOB_REASONS, reason, {
          jobs: jobs.length,
          unsupported_type: unserved,
          needing_storage: noStorage,
          ...(storage.state === 'refused' ? { storage_refusal: storage.reason } : {}),
        });
      } else only(JOB_REASONS, null);
      return ok;
    },
    open() {
      only(JOB_REASONS, null);
    },
    reason: () => pauses.list()[0] ?? null,
    pauses,
  };
}

/** The claim jobs to consider this round: more than wanted, so jobs that cannot run here do not block the rest. */
export function claimCandidates(store: LifecycleContext['store'], want: number): ClaimJob[] {
  return store.list(PREFIX.claimJob, ClaimJobSchema, { limit: Math.max(want * 4, 64) }).map((e) => e.value);
}
