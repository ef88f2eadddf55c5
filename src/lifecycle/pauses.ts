/**
 * Why claims are stopped now: a set of reasons, each held by the part that knows its cause and cleared by it as
 * soon as the cause is gone. Several reasons can hold at once; all of them are reported (`/status`,
 * `wcp_claims_paused{reason}`, `wcp status`). A reason may be held by more than one source (the lane's refused
 * send and the balance watch both say `wallet_unfunded`): it holds while any source holds it.
 *
 * Each change is logged once: a new reason at warn (at info for ordinary backpressure: a busy executor, a full
 * lane, `scheduler.max_inflight` reached), a cleared one at info.
 */
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';

/** Every reason claims stop, in the order they are listed. */
export const CLAIM_PAUSES = [
  'foreign_transaction',
  'worker_inactive',
  'wallet_unfunded',
  'unknown_queue',
  'executor_not_ready',
  'unsupported_type',
  'storage_unavailable',
  'storage_refused',
  'lane_full',
  'max_inflight',
  'no_executor_credits',
] as const;

/** Why claims are paused. */
export type ClaimPause = (typeof CLAIM_PAUSES)[number];

/** Each reason in words, for the operator's page and `wcp status`. */
export const CLAIM_PAUSE_WORDS: Readonly<Record<ClaimPause, string>> = {
  foreign_transaction:
    'a transaction from this wallet was not sent by this wcp (the key is used elsewhere): until the lane has moved past it',
  worker_inactive: 'the wallet is not an active worker on chain (SubnetControlPlane.isWorkerActive is false)',
  wallet_unfunded: 'the wallet cannot pay for a few lifecycles at current fees (or a send was refused for funds)',
  unknown_queue: 'nothing was ever enqueued on scheduler.queue_name at the TaskQueue',
  executor_not_ready: 'no executor is connected and handshaken',
  unsupported_type: 'the executor does not serve the type of the work waiting',
  storage_unavailable: 'the storage service (subnet-api) does not answer',
  storage_refused: 'the storage service refuses this worker',
  lane_full: 'the nonce lane is full (tx_policy.max_in_flight transactions pending)',
  max_inflight: 'scheduler.max_inflight activities are held',
  no_executor_credits: "the executor's slots are all busy",
};

/** Reasons that are ordinary backpressure (logged at info): claims resume by themselves as work finishes. */
const BACKPRESSURE: ReadonlySet<ClaimPause> = new Set(['no_executor_credits', 'lane_full', 'max_inflight']);

export interface ClaimPauses {
  /** Holds (`on`) or releases `reason` for `source`; `detail` is logged and shown with the reason. */
  set(reason: ClaimPause, on: boolean, detail?: Record<string, unknown>, source?: string): void;
  /** Releases `reason` for every source (its cause is known to be gone). */
  clear(reason: ClaimPause): void;
  has(reason: ClaimPause): boolean;
  /** The reasons held now, in `CLAIM_PAUSES` order. */
  list(): ClaimPause[];
  /** The held reasons with the detail of their latest holder. */
  details(): Partial<Record<ClaimPause, Record<string, unknown>>>;
}

/** An empty set; every reason's gauge starts at 0. */
export function createClaimPauses(o: { log: Logger; metrics: Metrics }): ClaimPauses {
  const { log, metrics } = o;
  const held = new Map<ClaimPause, Map<string, Record<string, unknown>>>();
  for (const r of CLAIM_PAUSES) metrics.claimsPaused.set({ reason: r }, 0);

  const list = () => CLAIM_PAUSES.filter((r) => (held.get(r)?.size ?? 0) > 0);

  function changed(reason: ClaimPause, on: boolean, detail: Record<string, unknown>): void {
    metrics.claimsPaused.set({ reason }, on ? 1 : 0);
    if (!on) {
      const still = list();
      if (still.length === 0) log.info('claims resumed', { was: reason });
      else log.info('claim pause cleared', { was: reason, still_paused: still.join(',') });
    } else if (BACKPRESSURE.has(reason)) log.info('claims paused', { reason, ...detail });
    else log.warn('claims paused', { reason, ...detail });
  }

  const pauses: ClaimPauses = {
    set(reason, on, detail = {}, source = 'default') {
      let sources = held.get(reason);
      const was = (sources?.size ?? 0) > 0;
      if (on) {
        if (!sources) {
          sources = new Map();
          held.set(reason, sources);
        }
        sources.set(source, detail);
      } else sources?.delete(source);
      const now = (sources?.size ?? 0) > 0;
      if (now !== was) changed(reason, now, detail);
    },
    clear(reason) {
      const sources = held.get(reason);
      if (!sources || sources.size === 0) return;
      sources.clear();
      changed(reason, false, {});
    },
    has: (reason) => (held.get(reason)?.size ?? 0) > 0,
    list,
    details() {
      const out: Partial<Record<ClaimPause, Record<string, unknown>>> = {};
      for (const r of list()) out[r] = [...(held.get(r)?.values() ?? [])].at(-1) ?? {};
      return out;
    },
  };
  return pauses;
}
