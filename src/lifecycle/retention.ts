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
 * cannot be read is left alone (reading it through its schema quarantines it). The records are read
 * `DONE_PRUNE_BATCH` at a time, each piece's deletions committed before the next is read: the supervisor's thread
 * (heartbeats, claims) is never held for the whole prefix.
 */
export async function pruneDone(store: Store, nowMs: number, retentionMs: number): Promise<number> {
  const cutoff = nowMs - retentionMs;
  let deleted = 0;
  let after: string | undefined;
  for (;;) {
    const piece = store.scan(PREFIX.done, { limit: DONE_PRUNE_BATCH, ...(after !== undefined ? { after } : {}) });
    const old: string[] = [];
    for (const e of piece) {
      const at = (e.value as { finished_at_ms?: unknown } | undefined)?.finished_at_ms;
      if (typeof at === 'number' && at < cutoff) old.push(e.key);
    }
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
