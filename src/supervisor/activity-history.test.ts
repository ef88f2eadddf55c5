import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { doneKey, inflightKey, txKey } from '../store/keys.ts';
import { openStore } from '../store/store.ts';
import { createActivityHistory, RECENT_ACTIVITIES } from './activity-history.ts';

const rec = (id: string, state: string, at: number, extra: Record<string, unknown> = {}) => ({
  activity_id: id,
  state,
  queue_name: 'q',
  activity_type: 'test.slow',
  dispatch_attempts: 0,
  created_at_ms: 0,
  updated_at_ms: at,
  ...extra,
});

test('recent activities: every committed state with its duration, tx hashes, the end; seeded at start; bounded', async () => {
  const store = openStore({
    path: join(mkdtempSync(join(tmpdir(), 'wcp-hist-')), 'wcp.db'),
    logger: createLogger('t', { write: () => {} }),
  });
  await store.transact((tx) => {
    tx.put(inflightKey('9'), rec('9', 'running', 500, { dispatch_attempts: 2 }));
    for (let i = 1; i <= RECENT_ACTIVITIES + 5; i++)
      tx.put(doneKey(String(1000 + i)), { activity_id: String(1000 + i), outcome: 'completed', finished_at_ms: i });
  });
  let t = 1_000;
  const h = createActivityHistory({ store, executor: '127.0.0.1:7070', now: () => t });
  // Seeded: what is held (newest), then the last ended ones (the highest ids), never more than the bound.
  expect(h.list()).toHaveLength(RECENT_ACTIVITIES);
  expect(h.list().at(1)).toMatchObject({ id: String(1000 + RECENT_ACTIVITIES + 5), state: 'done:completed' });
  expect(h.list().some((a) => a.id === '1001')).toBe(false);
  expect(h.list()[0]).toMatchObject({
    id: '9',
    state: 'running',
    attempts: 2,
    states: [{ since_ms: 500, for_s: 0.5 }],
  });

  const put = (k: string, v: unknown) => store.transact((tx) => tx.put(k, v));
  await put(inflightKey('1'), rec('1', 'claiming', t));
  await put(txKey('1'), { activity_id: '1', kind: 'claim', nonce: 0, tx_hash: '0xaa', attempts: 1, updated_at_ms: t });
  t = 3_000;
  await put(inflightKey('1'), rec('1', 'assigned', t, { dispatch_attempts: 1, input_ref: 'json:<b>' }));
  t = 7_000;
  await put(inflightKey('1'), rec('1', 'failing', t, { dispatch_attempts: 1, fail_reason: 'HANDLER_ERROR: <x>' }));
  t = 8_000;
  await store.transact((tx) => {
    tx.del(inflightKey('1'));
    tx.put(doneKey('1'), { activity_id: '1', outcome: 'failed', reason: 'HANDLER_ERROR: <x>', finished_at_ms: t });
  });
  t = 10_000;
  const [first] = h.list();
  expect(first).toMatchObject({
    id: '1',
    type: 'test.slow',
    state: 'done:failed',
    attempts: 1,
    executor: '127.0.0.1:7070',
    input_ref: 'json:<b>',
    reason: 'HANDLER_ERROR: <x>',
    txs: [{ kind: 'claim', hash: '0xaa' }],
  });
  expect(first?.states.map((s) => [s.state, s.for_s])).toEqual([
    ['claiming', 2],
    ['assigned', 4],
    ['failing', 1],
    ['done:failed', 2],
  ]);

  for (let i = 100; i < 100 + RECENT_ACTIVITIES; i++) await put(inflightKey(String(i)), rec(String(i), 'claimed', t));
  const all = h.list();
  expect(all).toHaveLength(RECENT_ACTIVITIES);
  expect(all[0]?.id).toBe(String(99 + RECENT_ACTIVITIES));
  expect(all.some((a) => a.id === '1')).toBe(false);
  h.stop();
  await store.close();
});
