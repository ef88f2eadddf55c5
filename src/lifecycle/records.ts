/**
 * Guarded writes of `inflight:{id}` records: a state change applies only if the record is still in a state the
 * caller expects and `transitions.ts` allows the move, so events arriving in any order cannot corrupt a record.
 */
import { inflightKey, PREFIX } from '../store/keys.ts';
import { type Inflight, InflightSchema, type InflightState } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { canTransition } from './transitions.ts';

/** A field patch, fixed or computed from the current record. */
export type InflightPatch = Partial<Inflight> | ((r: Inflight) => Partial<Inflight>);

/** Every activity we hold, in key order. */
export function listHeld(store: Store): Inflight[] {
  return store.list(PREFIX.inflight, InflightSchema).map((e) => e.value);
}

/** The guarded change for many records in one store transaction; returns the records it changed. */
export async function transitionMany(
  store: Store,
  now: () => number,
  ids: readonly string[],
  from: readonly InflightState[],
  to: InflightState,
  patch: InflightPatch = {},
): Promise<Inflight[]> {
  if (ids.length === 0) return [];
  return await store.transact((tx) => {
    const changed: Inflight[] = [];
    for (const id of ids) {
      const r = tx.get(inflightKey(id), InflightSchema);
      if (!r || !from.includes(r.state) || !canTransition(r.state, to)) continue;
      const next: Inflight = {
        ...r,
        ...(typeof patch === 'function' ? patch(r) : patch),
        state: to,
        updated_at_ms: now(),
      };
      tx.put(inflightKey(id), next);
      changed.push(next);
    }
    return changed;
  });
}

/** One guarded change: the new record, or null when the record was not in `from` (any of them). */
export async function transition(
  store: Store,
  now: () => number,
  id: string,
  from: readonly InflightState[],
  to: InflightState,
  patch: InflightPatch = {},
): Promise<Inflight | null> {
  return (await transitionMany(store, now, [id], from, to, patch))[0] ?? null;
}

/** Dispatches of `r` that reached the executor (what `maxDispatchAttempts` counts; re-offers after loss included). */
export function dispatchesUsed(r: Inflight): number {
  return Math.max(0, (r.dispatch_attempts ?? 0) - (r.refused_dispatches ?? 0));
}

/**
 * Where an executing record goes when its run ended without a result we can write (a retryable failure, a refused
 * Completion, a lost task): back to `claimed` for another dispatch while dispatches remain, else `failing` with
 * `reason` (the chain gets the last reason).
 */
export function retryOrFail(
  r: Inflight,
  maxDispatchAttempts: number,
  reason: string,
): { to: 'claimed'; patch: Partial<Inflight> } | { to: 'failing'; patch: Partial<Inflight> } {
  if (dispatchesUsed(r) < maxDispatchAttempts) return { to: 'claimed', patch: {} };
  return { to: 'failing', patch: { fail_reason: reason } };
}
