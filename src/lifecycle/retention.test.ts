import { afterEach, describe, expect, test } from 'bun:test';
import { doneKey, inflightKey, PREFIX, txKey } from '../store/keys.ts';
import type { Done, LaneTx } from '../store/records.ts';
import { persistLane, persistReservations } from '../txmgr/nonce-lane.ts';
import { DONE_PRUNE_BATCH, DONE_PRUNE_INTERVAL_MS } from './options.ts';
import { pruneDone, pruneIntervalMs, pruneTxRefs } from './retention.ts';
import { cleanupTestContexts, testContext } from './testing/fakes.ts';

afterEach(cleanupTestContexts);

const HOUR = 3_600_000;
const NOW = 1_800_000_000_000;
const done = (id: number, finishedAgoMs: number): Done => ({
  activity_id: String(id),
  outcome: 'completed',
  resumed: true,
  finished_at_ms: NOW - finishedAgoMs,
});

describe('done retention', () => {
  test('deletes the done records finished before the retention, keeps the rest and every other record', async () => {
    const { store } = testContext();
    const oldIds = Array.from({ length: DONE_PRUNE_BATCH * 2 + 7 }, (_, i) => i + 1);
    await store.transact((tx) => {
      for (const id of oldIds) tx.put(doneKey(String(id)), done(id, 25 * HOUR));
      // A recent one among the old (a long task of a low id), read in the second piece.
      tx.put(doneKey('1500'), done(1500, HOUR));
      tx.put(doneKey('90001'), done(90_001, 23 * HOUR));
      tx.put(doneKey('90002'), done(90_002, 0));
      tx.put(inflightKey('90003'), {
        activity_id: '90003',
        state: 'claimed',
        queue_name: 'q',
        dispatch_attempts: 0,
        created_at_ms: NOW - 48 * HOUR,
        updated_at_ms: NOW - 48 * HOUR,
      });
    });
    expect(await pruneDone(store, NOW, 24 * HOUR)).toBe(oldIds.length - 1);
    expect(store.scan(PREFIX.done).map((e) => e.key)).toEqual([doneKey('1500'), doneKey('90001'), doneKey('90002')]);
    expect(store.has(inflightKey('90003'))).toBe(true);
    // Nothing more to delete: a second pass finds nothing.
    expect(await pruneDone(store, NOW, 24 * HOUR)).toBe(0);
    // Once old enough, those go too.
    expect(await pruneDone(store, NOW + 2 * HOUR, 24 * HOUR)).toBe(1);
    expect(store.scan(PREFIX.done).map((e) => e.key)).toEqual([doneKey('1500'), doneKey('90002')]);
  });

  test('a record whose finish time cannot be read is left alone', async () => {
    const { store } = testContext();
    await store.transact((tx) => {
      tx.put(doneKey('1'), { activity_id: '1', outcome: 'completed' });
      tx.put(doneKey('2'), done(2, 48 * HOUR));
    });
    expect(await pruneDone(store, NOW, 24 * HOUR)).toBe(1);
    expect(store.scan(PREFIX.done).map((e) => e.key)).toEqual([doneKey('1')]);
  });
});

/** A lane slot for `ids` as the tx manager writes it. */
const slot = (nonce: number, kind: LaneTx['kind'], ids: string[], state: LaneTx['state'], at: number): LaneTx => ({
  nonce,
  kind,
  activity_ids: ids,
  to: `0x${'11'.repeat(20)}`,
  data: '0x',
  value: '0',
  gas_limit: '100000',
  max_fee_per_gas: '2',
  max_priority_fee_per_gas: '1',
  hashes: [`0x${nonce.toString(16).padStart(64, '0')}`],
  attempts: 1,
  state,
  created_at_ms: at,
  updated_at_ms: at,
});

describe('tx refs retention (issue 24: one tx:{id} ref per activity ever claimed stayed in the store)', () => {
  test('after N activities through the lane writers and retention, the tx: refs left are the recent ones only', async () => {
    const { store } = testContext();
    const N = 1_000;
    const HOUR_AGO = NOW - 25 * HOUR;
    // N activities claimed, completed and done long ago (claims in batches of 50, one complete each), through the
    // tx manager's own writers: each leaves a tx:{id} ref naming its latest tx.
    let nonce = 0;
    for (let first = 1; first <= N; first += 50) {
      const ids = Array.from({ length: 50 }, (_, i) => String(first + i));
      const claim = slot(nonce++, 'claim', ids, 'reserved', HOUR_AGO);
      const completes = ids.map((id) => slot(nonce++, 'complete', [id], 'reserved', HOUR_AGO));
      await persistReservations(store, [claim, ...completes], HOUR_AGO);
      await Promise.all(
        [claim, ...completes].map((s) =>
          persistLane(store, { ...s, state: 'confirmed' }, HOUR_AGO, { pruneNonce: s.nonce - 1 }),
        ),
      );
      await store.transact((tx) => {
        for (const id of ids) tx.put(doneKey(id), done(Number(id), 25 * HOUR));
      });
    }
    // A claim lost to another worker long ago: a ref, and no inflight or done record.
    const lost = slot(nonce++, 'claim', ['900001'], 'confirmed', HOUR_AGO);
    await persistReservations(store, [lost], HOUR_AGO);
    // Kept: a held activity's ref, a recent one, and one whose lane slot is still open.
    const heldClaim = slot(nonce++, 'claim', ['900002'], 'confirmed', HOUR_AGO);
    await persistReservations(store, [heldClaim], HOUR_AGO);
    await store.transact((tx) =>
      tx.put(inflightKey('900002'), {
        activity_id: '900002',
        state: 'running',
        queue_name: 'q',
        dispatch_attempts: 1,
        created_at_ms: HOUR_AGO,
        updated_at_ms: HOUR_AGO,
      }),
    );
    await persistReservations(store, [slot(nonce++, 'claim', ['900003'], 'confirmed', NOW)], NOW);
    await persistReservations(store, [slot(nonce++, 'complete', ['900004'], 'sent', HOUR_AGO)], HOUR_AGO);
    expect(store.count(PREFIX.tx)).toBe(N + 4);

    expect(await pruneDone(store, NOW, 24 * HOUR)).toBe(N);
    expect(await pruneTxRefs(store, NOW, 24 * HOUR)).toBe(N + 1);
    expect(store.scan(PREFIX.tx).map((e) => e.key)).toEqual([txKey('900002'), txKey('900003'), txKey('900004')]);
    expect(store.count(PREFIX.done)).toBe(0);
  });

  test('retention runs at least as often as the retention is long', () => {
    expect(pruneIntervalMs(24 * HOUR)).toBe(DONE_PRUNE_INTERVAL_MS);
    expect(pruneIntervalMs(60_000)).toBe(60_000);
  });
});
