import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { createLogger } from '../internal/logger.ts';
import { claimJobKey, doneKey, inflightKey, PREFIX, quarantineKey } from './keys.ts';
import { ClaimJobSchema, DoneSchema, type Inflight, InflightSchema, QuarantineSchema } from './records.ts';
import { LIST_CACHE_MAX_RECORDS, openStore, type Store } from './store.ts';

const dirs: string[] = [];
const stores: Store[] = [];
function tmpStore(): { store: Store; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-store-'));
  dirs.push(dir);
  const path = join(dir, 'wcp.db');
  const store = openStore({ path, logger: createLogger('test', { write: () => {} }) });
  stores.push(store);
  return { store, path };
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('store', () => {
  test('transact writes atomically and reads back typed records', async () => {
    const { store } = tmpStore();
    await store.transact((tx) => {
      tx.put(claimJobKey(7n), { activity_id: '7', queue_name: 'q', created_at_ms: 1 });
      tx.put(claimJobKey(12n), { activity_id: '12', queue_name: 'q', created_at_ms: 2 });
    });
    expect(store.get(claimJobKey('7'), ClaimJobSchema)?.queue_name).toBe('q');
    const listed = store.list('claim_job:', ClaimJobSchema);
    expect(listed.map((e) => e.value.activity_id)).toEqual(['7', '12']);
    expect(store.count('claim_job:')).toBe(2);
  });

  test('a whole-prefix list reuses unchanged decoded records, re-decodes changed ones, forgets deleted ones', async () => {
    const { store } = tmpStore();
    const job = (id: string, q: string) => ({
      activity_id: id,
      queue_name: q,
      created_at_ms: 1,
      source: 'poll' as const,
    });
    await store.transact((tx) => {
      tx.put(claimJobKey('1'), job('1', 'a'));
      tx.put(claimJobKey('2'), job('2', 'a'));
    });
    const first = store.list('claim_job:', ClaimJobSchema);
    const second = store.list('claim_job:', ClaimJobSchema);
    expect(second[0]?.value).toBe(first[0]?.value as never); // the same decoded object
    expect(Object.isFrozen(second[0]?.value)).toBe(true);
    await store.transact((tx) => {
      tx.put(claimJobKey('1'), job('1', 'b'));
      tx.del(claimJobKey('2'));
    });
    const third = store.list('claim_job:', ClaimJobSchema);
    expect(third.map((e) => `${e.value.activity_id}:${e.value.queue_name}`)).toEqual(['1:b']);
  });

  test('issue 24: a list of a large prefix (a day of done records) is not kept decoded in memory after it', async () => {
    const { store } = tmpStore();
    const N = LIST_CACHE_MAX_RECORDS * 2;
    await store.transact((tx) => {
      for (let i = 1; i <= N; i++)
        tx.put(doneKey(String(i)), { activity_id: String(i), outcome: 'completed', finished_at_ms: i });
    });
    expect(store.list(PREFIX.done, DoneSchema)).toHaveLength(N);
    // Before: all N stayed decoded in the list cache until the next list of the prefix (a reorg's re-check, rare).
    expect(store.cachedValues()).toBe(0);
    // A small prefix (the lane's bounded history) is still served from the cache.
    await store.transact((tx) => {
      for (let i = 1; i <= 100; i++)
        tx.put(claimJobKey(BigInt(i)), { activity_id: String(i), queue_name: 'q', created_at_ms: i });
    });
    store.list(PREFIX.claimJob, ClaimJobSchema);
    expect(store.cachedValues()).toBe(100);
  });

  test('a raw scan walks a prefix in pieces: `after` a key (present or deleted), at most `limit`', async () => {
    const { store } = tmpStore();
    await store.transact((tx) => {
      for (let i = 1; i <= 7; i++) tx.put(`done:${i}`, { i });
      tx.put('inflight:1', { i: 0 });
      tx.put('lane:1', { i: 0 });
    });
    const keys = (o?: { limit?: number; after?: string; reverse?: boolean }) =>
      store.scan('done:', o).map((e) => e.key);
    expect(keys({ limit: 2, reverse: true })).toEqual(['done:7', 'done:6']); // the last ones, from the end
    expect(keys({ reverse: true })).toHaveLength(7);
    expect(keys({ limit: 3 })).toEqual(['done:1', 'done:2', 'done:3']);
    expect(keys({ limit: 3, after: 'done:3' })).toEqual(['done:4', 'done:5', 'done:6']);
    expect(keys({ limit: 3, after: 'done:6' })).toEqual(['done:7']);
    expect(keys({ after: 'done:7' })).toEqual([]);
    await store.transact((tx) => tx.del('done:4'));
    expect(keys({ limit: 2, after: 'done:4' })).toEqual(['done:5', 'done:6']);
    // A key before the prefix starts it at its beginning; one past it finds nothing.
    expect(keys({ limit: 1, after: 'a' })).toEqual(['done:1']);
    expect(keys({ after: 'done:\uffff' })).toEqual([]);
  });

  test('a throwing transaction writes nothing', async () => {
    const { store } = tmpStore();
    await expect(
      store.transact((tx) => {
        tx.put(claimJobKey(1n), { activity_id: '1', queue_name: 'q', created_at_ms: 1 });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(store.has(claimJobKey(1n))).toBe(false);
  });

  test('a corrupt record is quarantined, not a crash', async () => {
    const { store, path } = tmpStore();
    await store.close();
    stores.pop();
    const raw = open<Buffer, string>({ path, encoding: 'binary', noSubdir: true });
    await raw.put(claimJobKey(3n), Buffer.from('{not json'));
    await raw.put(
      claimJobKey(4n),
      Buffer.from(JSON.stringify({ activity_id: 'x4', queue_name: 'q', created_at_ms: 1 })),
    );
    await raw.close();
    const errors: string[] = [];
    const s2 = openStore({
      path,
      logger: createLogger('test', { write: () => {} }),
      onQuarantine: (k) => errors.push(k),
    });
    stores.push(s2);
    expect(s2.get(claimJobKey(3n), ClaimJobSchema)).toBeUndefined();
    await s2.transact((tx) => tx.get(claimJobKey(4n), ClaimJobSchema));
    await s2.flushed();
    await new Promise((r) => setTimeout(r, 50));
    expect(errors.sort()).toEqual([claimJobKey(3n), claimJobKey(4n)].sort());
    expect(s2.has(claimJobKey(3n))).toBe(false);
    expect(s2.has(claimJobKey(4n))).toBe(false);
    const q = s2.get(quarantineKey(claimJobKey(3n)), QuarantineSchema);
    expect(Buffer.from(q?.raw_base64 ?? '', 'base64').toString()).toBe('{not json');
    expect(q?.error).toContain('not JSON');
    const q4 = s2.get(quarantineKey(claimJobKey(4n)), QuarantineSchema);
    expect(q4?.error).toContain('activity_id');
  });

  describe('held records (mirrored in memory)', () => {
    const held = (id: string, state: Inflight['state']): Inflight => ({
      activity_id: id,
      state,
      queue_name: 'q',
      dispatch_attempts: 0,
      created_at_ms: 1,
      updated_at_ms: 1,
    });

    test('an unchanged prefix lists the same frozen answer; any commit under it gives a new one', async () => {
      const { store } = tmpStore();
      await store.transact((tx) => {
        for (const id of ['1', '2']) tx.put(inflightKey(id), held(id, 'claimed'));
      });
      const a = store.list('inflight:', InflightSchema);
      expect(store.list('inflight:', InflightSchema)).toBe(a);
      expect(() => (a as unknown[]).push(1)).toThrow();
      await store.transact((tx) => tx.put(inflightKey('2'), held('2', 'assigned')));
      const b = store.list('inflight:', InflightSchema);
      expect(b).not.toBe(a);
      expect(b.map((e) => e.value.state)).toEqual(['claimed', 'assigned']);
      // The unchanged record keeps its frozen entry; the changed one is a new one.
      expect(b[0]).toBe(a[0] as never);
      expect(b[1]).not.toBe(a[1] as never);
      expect(Object.isFrozen(b[0]) && Object.isFrozen(b[1])).toBe(true);
      await store.transact((tx) => tx.del(inflightKey('1')));
      expect(store.list('inflight:', InflightSchema).map((e) => e.value.activity_id)).toEqual(['2']);
      await store.close();
    });

    test('reads show each commit once it resolves, in key order, and nothing of a throwing one', async () => {
      const { store, path } = tmpStore();
      await store.transact((tx) => {
        for (const id of ['12', '3', '7']) tx.put(inflightKey(id), held(id, 'claimed'));
      });
      const pending = store.transact((tx) => {
        tx.put(inflightKey('7'), held('7', 'assigned'));
        tx.del(inflightKey('3'));
      });
      // Not committed yet: reads still see the committed state.
      expect(store.get(inflightKey('7'), InflightSchema)?.state).toBe('claimed');
      await pending;
      expect(store.get(inflightKey('7'), InflightSchema)?.state).toBe('assigned');
      expect(store.has(inflightKey('3'))).toBe(false);
      expect(store.list('inflight:', InflightSchema).map((e) => e.value.activity_id)).toEqual(['7', '12']);
      expect(store.list('inflight:', InflightSchema, { limit: 1 }).map((e) => e.value.activity_id)).toEqual(['7']);
      await expect(
        store.transact((tx) => {
          tx.put(inflightKey('7'), held('7', 'running'));
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(store.get(inflightKey('7'), InflightSchema)?.state).toBe('assigned');
      // What memory shows is what LMDB holds: a fresh store over the same file reads the same.
      await store.close();
      stores.pop();
      const again = openStore({ path, logger: createLogger('test', { write: () => {} }) });
      stores.push(again);
      expect(again.list('inflight:', InflightSchema).map((e) => `${e.value.activity_id}:${e.value.state}`)).toEqual([
        '7:assigned',
        '12:claimed',
      ]);
    });

    test('a record is decoded once per commit: unchanged reads share one frozen value, a new commit a new one', async () => {
      const { store } = tmpStore();
      await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'claimed')));
      const a = store.get(inflightKey('1'), InflightSchema);
      expect(store.list('inflight:', InflightSchema)[0]?.value).toBe(a as never);
      expect(Object.isFrozen(a)).toBe(true);
      const inTx = await store.transact((tx) => tx.get(inflightKey('1'), InflightSchema));
      expect(inTx).toBe(a as never);
      await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'claimed')));
      const b = store.get(inflightKey('1'), InflightSchema);
      expect(b).not.toBe(a as never);
      expect(b).toEqual(a as never);
    });

    test('a corrupt held record found at open is quarantined and leaves the held list', async () => {
      const { store, path } = tmpStore();
      await store.transact((tx) => tx.put(inflightKey('2'), held('2', 'claimed')));
      await store.close();
      stores.pop();
      const raw = open<Buffer, string>({ path, encoding: 'binary', noSubdir: true });
      await raw.put(inflightKey('1'), Buffer.from('{not json'));
      await raw.close();
      const s2 = openStore({ path, logger: createLogger('test', { write: () => {} }) });
      stores.push(s2);
      expect(s2.list('inflight:', InflightSchema).map((e) => e.value.activity_id)).toEqual(['2']);
      await s2.flushed();
      await new Promise((r) => setTimeout(r, 50));
      expect(s2.has(inflightKey('1'))).toBe(false);
      expect(s2.has(quarantineKey(inflightKey('1')))).toBe(true);
    });
  });
});
