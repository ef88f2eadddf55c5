import { afterEach, describe, expect, test } from 'bun:test';
import { doneKey, inflightKey, PREFIX } from '../store/keys.ts';
import type { Done } from '../store/records.ts';
import { DONE_PRUNE_BATCH } from './options.ts';
import { pruneDone } from './retention.ts';
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
