/**
 * `done:` retention: a finished activity's record is deleted once it finished longer ago than
 * `store.done_retention` (at least the reconciler's window, so no rescan writes it again). Without it the store
 * grew by one record per activity for the life of the daemon, and every `/status` read counted them all on the
 * supervisor's thread. The chain keeps the history.
 *
 * The `tx:{id}` refs (the latest transaction sent for an activity, written by the tx manager) go the same way: one
 * is deleted once it was last written longer ago than the retention and its activity has neither an `inflight:`
 * nor a `done:` record left (its done record deleted above, or a claim lost to another worker, which leaves no
 * done record), unless the lane slot it names is still open. Before, every activity ever claimed kept its ref for
 * the life of the store (issue 24: ~190 bytes of store and one more record for the restart's `findCarried` to list,
 * per activity, forever).
 */
import { doneKey, idFromKey, inflightKey, laneKey, PREFIX } from '../store/keys.ts';
import { LaneTxSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import { OPEN_LANE_STATES } from './records.ts';
import { DONE_PRUNE_BATCH, DONE_PRUNE_INTERVAL_MS } from './options.ts';

/**
 * How often retention runs: `DONE_PRUNE_INTERVAL_MS`, or the retention itself when shorter (a short retention
 * would otherwise keep up to ten minutes of records past it).
 */
export const pruneIntervalMs = (retentionMs: number): number => Math.min(DONE_PRUNE_INTERVAL_MS, retentionMs);

/**
 * Deletes, `DONE_PRUNE_BATCH` keys of `prefix` at a time (each piece's deletions committed before the next is
 * read: the supervisor's thread, heartbeats and claims, is never held for the whole prefix), the records
 * `expired(key, value)` says are past their time; returns how many.
 */
async function prunePrefix(
  store: Store,
  prefix: string,
  expired: (key: string, value: unknown) => boolean,
): Promise<number> {
  let deleted = 0;
  let after: string | undefined;
  for (;;) {
    const piece = store.scan(prefix, { limit: DONE_PRUNE_BATCH, ...(after !== undefined ? { after } : {}) });
    const old = piece.filter((e) => expired(e.key, e.value)).map((e) => e.key);
    if (old.length > 0) {
      await store.transact((tx) => {
        for (const key of old) tx.del(key);
      });
      deleted += old.length;
    } else await new Promise<void>((r) => setImmediate(r));
    if (piece.length < DONE_PRUNE_BATCH) return deleted;
    after = piece[piece.length - 1]?.key;
  }
}

/**
 * Deletes the `done:` records that finished before `nowMs - retentionMs`; returns how many. A record whose time
 * cannot be read is left alone (reading it through its schema quarantines it).
 */
export function pruneDone(store: Store, nowMs: number, retentionMs: number): Promise<number> {
  const cutoff = nowMs - retentionMs;
  return prunePrefix(store, PREFIX.done, (_key, value) => {
    const at = (value as { finished_at_ms?: unknown } | undefined)?.finished_at_ms;
    return typeof at === 'number' && at < cutoff;
  });
}

/**
 * Deletes the `tx:{id}` refs last written before `nowMs - retentionMs` whose activity has no `inflight:` and no
 * `done:` record and whose lane slot is not open (see the file comment); returns how many. Run after `pruneDone`.
 */
export function pruneTxRefs(store: Store, nowMs: number, retentionMs: number): Promise<number> {
  const cutoff = nowMs - retentionMs;
  return prunePrefix(store, PREFIX.tx, (key, value) => {
    const ref = value as { updated_at_ms?: unknown; nonce?: unknown } | undefined;
    if (typeof ref?.updated_at_ms !== 'number' || ref.updated_at_ms >= cutoff) return false;
    const id = idFromKey(key);
    if (store.has(inflightKey(id)) || store.has(doneKey(id))) return false;
    const slot = typeof ref.nonce === 'number' ? store.get(laneKey(ref.nonce), LaneTxSchema) : undefined;
    return !slot || !OPEN_LANE_STATES.has(slot.state);
  });
}
