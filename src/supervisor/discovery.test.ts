import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { createMetrics } from '../internal/metrics.ts';
import type { ActivityManager } from '../lifecycle/manager.ts';
import { doneKey, inflightKey } from '../store/keys.ts';
import { openStore, type Store } from '../store/store.ts';
import { createDiscovery, REORG_DONE_RECHECK_MS } from './discovery.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(): { store: Store; rescans: string[][]; discovery: ReturnType<typeof createDiscovery> } {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-discovery-'));
  const logger = createLogger('test', { write: () => {} });
  const store = openStore({ path: join(dir, 'wcp.db'), logger });
  cleanups.push(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const rescans: string[][] = [];
  const discovery = createDiscovery({
    store,
    metrics: createMetrics(),
    log: logger,
    manager: () => ({}) as ActivityManager,
    rescan: (ids) => rescans.push(ids),
    onStartupScanDone: () => {},
  });
  return { store, rescans, discovery };
}

describe('discovery: a reorg', () => {
  test('rescans what is held and what ended recently (its done record may rest on a fact that vanished)', async () => {
    const { store, rescans, discovery } = setup();
    const now = Date.now();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), {
        activity_id: '1',
        state: 'running',
        queue_name: 'q',
        dispatch_attempts: 1,
        created_at_ms: now,
        updated_at_ms: now,
      });
      tx.put(doneKey('2'), { activity_id: '2', outcome: 'completed', finished_at_ms: now - 1_000 });
      tx.put(doneKey('3'), {
        activity_id: '3',
        outcome: 'expired',
        finished_at_ms: now - REORG_DONE_RECHECK_MS - 60_000,
      });
    });
    discovery.onReconcilerEvent({ type: 'reorg', forkBlock: 10, detail: 'test' });
    expect(rescans).toEqual([['1', '2']]);
  });
});
