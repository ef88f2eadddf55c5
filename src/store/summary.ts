/**
 * What the store says the worker holds, for `wcp status` when no daemon answers and for the daemon's `/status`:
 * activities per lifecycle state, claim jobs waiting, finished ones by outcome, and the nonce lane (next nonce,
 * pending slots and the oldest pending one's age). Reads only; safe on a store another process has open.
 */
import { NONCE_LAST, PREFIX } from './keys.ts';
import type { Store } from './store.ts';

export interface StoreSummary {
  activities_by_state: Record<string, number>;
  claim_jobs: number;
  done_by_outcome: Record<string, number>;
  lane: {
    next_nonce: number | null;
    pending: number;
    oldest_pending_age_s: number | null;
    by_state: Record<string, number>;
  };
  quarantined: number;
}

const count = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

/** The summary at `nowMs`. */
export function summarizeStore(store: Pick<Store, 'scan' | 'count'>, nowMs = Date.now()): StoreSummary {
  const byState: Record<string, number> = {};
  for (const e of store.scan(PREFIX.inflight))
    count(byState, String((e.value as { state?: unknown } | undefined)?.state ?? 'unreadable'));
  const done: Record<string, number> = {};
  for (const e of store.scan(PREFIX.done))
    count(done, String((e.value as { outcome?: unknown } | undefined)?.outcome ?? 'unreadable'));
  const laneStates: Record<string, number> = {};
  let pending = 0;
  let oldest: number | null = null;
  for (const e of store.scan(PREFIX.lane)) {
    const v = (e.value ?? {}) as { state?: string; created_at_ms?: number; sent_at_ms?: number };
    const st = String(v.state ?? 'unreadable');
    count(laneStates, st);
    if (st === 'reserved' || st === 'sent' || st === 'mined') {
      pending += 1;
      const at = v.sent_at_ms ?? v.created_at_ms;
      if (typeof at === 'number') oldest = oldest === null ? at : Math.min(oldest, at);
    }
  }
  const last = (store.scan(NONCE_LAST)[0]?.value as { nonce?: unknown } | undefined)?.nonce;
  return {
    activities_by_state: byState,
    claim_jobs: store.count(PREFIX.claimJob),
    done_by_outcome: done,
    lane: {
      next_nonce: typeof last === 'number' ? last + 1 : null,
      pending,
      oldest_pending_age_s: oldest === null ? null : Math.round((nowMs - oldest) / 1000),
      by_state: laneStates,
    },
    quarantined: store.count(PREFIX.quarantine),
  };
}
