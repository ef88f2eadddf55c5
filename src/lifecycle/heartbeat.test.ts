import { afterEach, describe, expect, test } from 'bun:test';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import { dueHeartbeats, heartbeatRound } from './heartbeat.ts';
import { createSend } from './send.ts';
import { createSettle } from './settle.ts';
import { cleanupTestContexts, confirmed, held, NOW_S, testContext, until } from './test-fakes.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  const send = createSend(t.ctx);
  const rechecked: string[] = [];
  const settle = createSettle(t.ctx, {
    finish: { finish: async () => {}, submitFinish: async () => {}, submitResume: async () => {} },
    recheck: async (ids) => void rechecked.push(...ids),
    fillDetails: async () => {},
  });
  return { ...t, send, settle, rechecked };
}

const kinds = (reqs: Array<{ kind: string; activityIds: string[] }>) =>
  reqs.map((r) => `${r.kind}(${r.activityIds.join(',')})`);

describe('heartbeat step', () => {
  test('due after min(interval, timeout / 3) since the last committed heartbeat; skips states without heartbeats', async () => {
    const { ctx, store } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)); // interval 10 s: due
      tx.put(inflightKey('2'), held('2', 'running', NOW_S - 9)); // not yet
      tx.put(inflightKey('3'), { ...held('3', 'claimed', NOW_S - 4), heartbeat_timeout_s: 12 }); // timeout / 3 = 4 s: due
      tx.put(inflightKey('4'), held('4', 'resuming', NOW_S - 100)); // complete landed: no heartbeats
    });
    expect([...dueHeartbeats(ctx, NOW_S).entries()]).toEqual([
      ['1', NOW_S],
      ['3', NOW_S],
    ]);
  });

  test('a heartbeat waiting for its turn in the lane is not sent again by the next round', async () => {
    const { ctx, store, txm, send } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    const first = heartbeatRound(ctx, send); // its submit waits (lane busy)
    await until(() => txm.submitted.length === 1);
    await heartbeatRound(ctx, send);
    txm.releaseAll();
    await first;
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']);
  });

  test('a mined heartbeat whose new last_heartbeat is not committed yet does not make the activity due again', async () => {
    const { ctx, store, txm, rpc, send, settle } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    await heartbeatRound(ctx, send);
    const hb = txm.submitted[0];
    if (!hb) throw new Error('no heartbeat sent');
    // The confirmation is being handled: its block's time is still being read, nothing committed yet.
    const openHeader = rpc.hold('eth_getBlockByNumber');
    const settling = settle(confirmed(hb, 0, [['ActivityHeartbeat', '1']]));
    await until(() => rpc.calls.includes('eth_getBlockByNumber'));
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']);
    openHeader();
    await settling;
    expect(store.get(inflightKey('1'), InflightSchema)?.last_heartbeat_s).toBe(NOW_S);
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']); // committed: not due for another interval
  });

  test('a heartbeat the receipt does not show is re-checked against the chain', async () => {
    const { ctx, store, txm, send, settle, rechecked, tracker } = setup();
    txm.auto = true;
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10));
      tx.put(inflightKey('2'), held('2', 'running', NOW_S - 10));
    });
    await heartbeatRound(ctx, send);
    const hb = txm.submitted[0];
    if (!hb) throw new Error('no heartbeat sent');
    await settle(confirmed(hb, 0, [['ActivityHeartbeat', '1']]));
    expect(rechecked).toEqual(['2']);
    expect(store.get(inflightKey('2'), InflightSchema)?.last_heartbeat_s).toBe(NOW_S - 10);
    expect(tracker.heartbeatInFlight('2')).toBe(false);
  });
});
