import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { claimJobKey, doneKey, inflightKey, laneKey, NONCE_LAST } from './keys.ts';
import { openStore } from './store.ts';
import { summarizeStore } from './summary.ts';

test('the store summary counts held activities per state, claim jobs, outcomes and the lane', async () => {
  const store = openStore({
    path: join(mkdtempSync(join(tmpdir(), 'wcp-sum-')), 'wcp.db'),
    logger: createLogger('t', { write: () => {} }),
  });
  await store.transact((tx) => {
    tx.put(inflightKey('1'), { activity_id: '1', state: 'running' });
    tx.put(inflightKey('2'), { activity_id: '2', state: 'running' });
    tx.put(inflightKey('3'), { activity_id: '3', state: 'claimed' });
    tx.put(claimJobKey('4'), { activity_id: '4' });
    tx.put(doneKey('5'), { activity_id: '5', outcome: 'completed' });
    tx.put(laneKey(0), { nonce: 0, state: 'confirmed', created_at_ms: 1_000 });
    tx.put(laneKey(1), { nonce: 1, state: 'sent', created_at_ms: 2_000, sent_at_ms: 3_000 });
    tx.put(NONCE_LAST, { nonce: 1 });
  });
  const s = summarizeStore(store, 13_000);
  expect(s.activities_by_state).toEqual({ running: 2, claimed: 1 });
  expect(s.claim_jobs).toBe(1);
  expect(s.done_by_outcome).toEqual({ completed: 1 });
  expect(s.lane).toEqual({ next_nonce: 2, pending: 1, oldest_pending_age_s: 10, by_state: { confirmed: 1, sent: 1 } });
  await store.close();
});
