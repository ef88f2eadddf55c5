/**
 * Guarded writes of `inflight:{id}` records: a state change applies only if the record is still in a state the
 * caller expects and `transitions.ts` allows the move, so events arriving in any order cannot corrupt a record.
 */
import { claimJobKey, doneKey, inflightKey, PREFIX } from '../store/keys.ts';
import { type Inflight, InflightSchema, type InflightState } from '../store/records.ts';
import type { Store, StoreTx } from '../store/store.ts';
import type { Decision, Write } from './effects.ts';
import { canTransition } from './transitions.ts';

/** Lane slot states of a tx not yet final (the tx manager still re-sends or confirms it; it may still land). */
export const OPEN_LANE_STATES: ReadonlySet<string> = new Set(['reserved', 'sent', 'mined']);

/** A field patch, fixed or computed from the current record. */
export type InflightPatch = Partial<Inflight> | ((r: Inflight) => Partial<Inflight>);

/** Every activity we hold, in key order. */
export function listHeld(store: Store): Inflight[] {
  return store.list(PREFIX.inflight, InflightSchema).map((e) => e.value);
}

/** `r` moved to `to` with `patch` at `atMs`, or null when it is not in `from` or the move is not legal. PURE. */
export function moved(
  r: Inflight | undefined,
  from: readonly InflightState[],
  to: InflightState,
  atMs: number,
  patch: InflightPatch = {},
): Inflight | null {
  if (!r || !from.includes(r.state) || !canTransition(r.state, to)) return null;
  return { ...r, ...(typeof patch === 'function' ? patch(r) : patch), state: to, updated_at_ms: atMs };
}

/** Applies one decided write inside `tx`. */
export function applyWrite(tx: StoreTx, w: Write): void {
  switch (w.kind) {
    case 'put':
      tx.put(inflightKey(w.record.activity_id), w.record);
      return;
    case 'end':
      tx.put(doneKey(w.done.activity_id), w.done);
      tx.del(inflightKey(w.done.activity_id));
      tx.del(claimJobKey(w.done.activity_id));
      return;
    case 'requeue':
      tx.del(inflightKey(w.job.activity_id));
      tx.put(claimJobKey(w.job.activity_id), w.job);
      return;
  }
}

/**
 * Decides over the inflight records of `ids` and commits the decision's writes, in one store transaction (the
 * records are read inside it, so no event can slip between the read and the write). Returns the decision.
 */
export async function commit<D extends Decision>(
  store: Store,
  ids: readonly string[],
  decide: (records: ReadonlyMap<string, Inflight>) => D,
): Promise<D> {
  return await store.transact((tx) => {
    const records = new Map<string, Inflight>();
    for (const id of ids) {
      const r = tx.get(inflightKey(id), InflightSchema);
      if (r) records.set(id, r);
    }
    const d = decide(records);
    for (const w of d.writes) applyWrite(tx, w);
    return d;
  });
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
      const next = moved(tx.get(inflightKey(id), InflightSchema), from, to, now(), patch);
      if (!next) continue;
      tx.put(inflightKey(id), next);
      changed.push(next);
    }
    return changed;
  });
}

/**
 * The patch that gives back one dispatch of `r` (it does not count toward `maxDispatchAttempts`: refused before
 * the executor, lost across a restart or a shared crash, handed back by an executor shutting down); the attempt
 * number stays spent.
 */
export function uncountedDispatch(r: Pick<Inflight, 'refused_dispatches'>): Pick<Inflight, 'refused_dispatches'> {
  return { refused_dispatches: (r.refused_dispatches ?? 0) + 1 };
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
