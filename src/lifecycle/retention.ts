/**
 * `done:` retention: a finished activity's record is deleted once it finished longer ago than
 * `store.done_retention` (at least the reconciler's window, so no rescan writes it again). Without it the store
 * grew by one record per activity for the life of the daemon, and every `/status` read counted them all on the
 * supervisor's thread. The chain keeps the history.
 */
import { PREFIX } from '../store/keys.ts';
import type { Store } from '../store/store.ts';
import { DONE_PRUNE_BATCH } from './options.ts';

/**
 * Deletes the `done:` records that finished before `nowMs - retentionMs`; returns how many. A record whose time
 * cannot be read is left alone (reading it through its schema quarantines it).
 */
export async function pruneDone(store: Store, nowMs: number, retentionMs: number): Promise<number> {
  const cutoff = nowMs - retentionMs;
  const old: string[] = [];
  for (const e of store.scan(PREFIX.done)) {
    const at = (e.value as { finished_at_ms?: unknown } | undefined)?.finished_at_ms;
    if (typeof at === 'number' && at < cutoff) old.push(e.key);
  }
  for (let i = 0; i < old.length; i += DONE_PRUNE_BATCH) {
    const part = old.slice(i, i + DONE_PRUNE_BATCH);
    await store.transact((tx) => {
      for (const key of part) tx.del(key);
    });
  }
  return old.length;
}
