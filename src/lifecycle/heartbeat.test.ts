import { afterEach, describe, expect, test } from 'bun:test';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import { dueHeartbeats, heartbeatRound } from './heartbeat.ts';
import { HEARTBEAT_BATCH_IDS } from './options.ts';
import { cleanupTestContexts, confirmed, mined, testContext, testSteps } from './testing/fakes.ts';
import { untilTrue } from '../internal/testing/until.ts';
import { held, NOW_S, TQ as TQ_ADDR } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  const rechecked: string[] = [];
  const { send, settle } = testSteps(t, {
    recheck: async (ids) => {
      rechecked.push(...ids);
      return [];
    },
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
    await untilTrue(() => txm.submitted.length === 1);
    await heartbeatRound(ctx, send);
    txm.releaseAll();
    await first;
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']);
  });

  test('what was held at a start is heartbeated by the new process as soon as it can be, due or not, once', async () => {
    const { ctx, store, txm, send } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)); // due anyway
      tx.put(inflightKey('2'), held('2', 'running', NOW_S - 1)); // heartbeated a second ago
      tx.put(inflightKey('3'), held('3', 'running', NOW_S - 1)); // the previous process's heartbeat still pending
      tx.put(inflightKey('4'), held('4', 'resuming', NOW_S - 100)); // complete landed: no heartbeats
    });
    ctx.tracker.restore('heartbeat', ['3'], 7);
    const owed = new Set(['1', '2', '3', '4', '9']); // 9: no longer held
    expect([...dueHeartbeats(ctx, NOW_S).keys()]).toEqual(['1']);
    expect([...dueHeartbeats(ctx, NOW_S, owed).keys()]).toEqual(['1', '2']);
    expect([...owed]).toEqual(['1', '2', '3', '4']);
    txm.auto = true;
    await heartbeatRound(ctx, send, owed);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1,2)']);
    expect([...owed]).toEqual(['3', '4']);
    // The previous process's heartbeat of 3 is gone (mined and settled): 3 is owed one from this process now.
    ctx.tracker.release('heartbeat', ['3'], 7);
    expect([...dueHeartbeats(ctx, NOW_S, owed).keys()]).toEqual(['3']);
  });

  test('a round of several batches submits them all at once, not each after the previous one was sent', async () => {
    const { ctx, store, txm, send } = setup();
    const n = HEARTBEAT_BATCH_IDS * 2 + 1;
    await store.transact((tx) => {
      for (let i = 1; i <= n; i++) tx.put(inflightKey(String(i)), held(String(i), 'running', NOW_S - 10));
    });
    const round = heartbeatRound(ctx, send); // the lane holds every submit until released
    await untilTrue(() => txm.submitted.length === 3);
    txm.releaseAll();
    await round;
    expect(txm.submitted.map((r) => r.activityIds.length).sort((a, b) => a - b)).toEqual([
      1,
      HEARTBEAT_BATCH_IDS,
      HEARTBEAT_BATCH_IDS,
    ]);
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
    await untilTrue(() => rpc.calls.includes('eth_getBlockByNumber'));
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
    expect(tracker.heartbeats.inFlight('2')).toBe(false);
  });

  test('an id a mined heartbeat did not accept is re-checked at inclusion, before any confirmation', async () => {
    const { ctx, store, txm, send, settle, rechecked, tracker } = setup();
    txm.auto = true;
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10));
      tx.put(inflightKey('2'), held('2', 'running', NOW_S - 10));
    });
    await heartbeatRound(ctx, send);
    const hb = txm.submitted[0];
    if (!hb) throw new Error('no heartbeat sent');
    await settle(mined(hb, 0, [['ActivityHeartbeat', '1']]));
    expect(rechecked).toEqual(['2']);
    expect(tracker.heartbeats.lastMinedS('1')).toBe(NOW_S);
    expect(tracker.heartbeats.lastMinedS('2')).toBeUndefined();
  });
});

describe('heartbeats paced by inclusion (liveness independent of confirmation depth)', () => {
  test('the next heartbeat is due an interval after the last MINED one, before that one is confirmed', async () => {
    const { ctx, store, txm, rpc, send, settle, clock, tracker } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    await heartbeatRound(ctx, send);
    const hb = txm.submitted[0];
    if (!hb) throw new Error('no heartbeat sent');
    // Mined in block 100 (the fake chain's head, at NOW_S); its confirmation is 20 blocks away.
    rpc.head = { number: 100, timestamp: NOW_S };
    clock.set(NOW_S + 9);
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']); // pending, not mined: held back
    await settle(mined(hb, 0, [['ActivityHeartbeat', '1']]));
    expect(tracker.heartbeats.lastMinedS('1')).toBe(NOW_S);
    await heartbeatRound(ctx, send); // 9 s after the mined one: not due yet (interval 10 s)
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']);
    clock.set(NOW_S + 10);
    await heartbeatRound(ctx, send); // due from the mined block, its confirmation still pending
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)', 'heartbeat(1)']);
    // Confirmations still govern what is recorded: the store's last heartbeat moves only on `confirmed`.
    expect(store.get(inflightKey('1'), InflightSchema)?.last_heartbeat_s).toBe(NOW_S - 10);
    await settle(confirmed(hb, 0, [['ActivityHeartbeat', '1']]));
    expect(store.get(inflightKey('1'), InflightSchema)?.last_heartbeat_s).toBe(NOW_S);
  });

  test('a reorged heartbeat is pending again: no new one until it is mined again, then paced from its new block', async () => {
    const { ctx, store, txm, rpc, send, settle, clock } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    await heartbeatRound(ctx, send);
    const hb = txm.submitted[0];
    if (!hb) throw new Error('no heartbeat sent');
    await settle(mined(hb, 0, [['ActivityHeartbeat', '1']]));
    await settle({ type: 'reorged', kind: 'heartbeat', nonce: 0, activityIds: ['1'], hash: '0x', blockNumber: 100 });
    clock.set(NOW_S + 15);
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']); // the lane re-sends it; no second one behind it
    rpc.head = { number: 105, timestamp: NOW_S + 14 };
    await settle(mined(hb, 0, [['ActivityHeartbeat', '1']], 105));
    await heartbeatRound(ctx, send); // 1 s after the new block
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']);
    clock.set(NOW_S + 24);
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)', 'heartbeat(1)']);
  });

  test('heartbeats slow to land (a slow node) are sent that much earlier, so they land about an interval apart', async () => {
    const { ctx, store, txm, rpc, send, settle, clock, tracker } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    await heartbeatRound(ctx, send); // a round at NOW_S…
    const hb = txm.submitted[0];
    if (!hb) throw new Error('no heartbeat sent');
    rpc.head = { number: 103, timestamp: NOW_S + 3 };
    await settle(mined(hb, 0, [['ActivityHeartbeat', '1']], 103)); // …landed 3 s later
    expect(tracker.heartbeats.leadS()).toBe(3);
    clock.set(NOW_S + 9);
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)']);
    clock.set(NOW_S + 10); // 7 s after the last landed one: sent 3 s ahead of its due time
    await heartbeatRound(ctx, send);
    expect(kinds(txm.submitted)).toEqual(['heartbeat(1)', 'heartbeat(1)']);
  });

  test('a heartbeat whose activity ended while it waited for a nonce is withdrawn (stillWanted)', async () => {
    const { ctx, store, txm, send, tracker } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    const round = heartbeatRound(ctx, send); // waits for its turn
    await untilTrue(() => txm.submitted.length === 1);
    expect(txm.submitted[0]?.stillWanted?.()).toBe(true);
    tracker.heartbeats.forget('1'); // a repair ended the activity meanwhile
    expect(txm.submitted[0]?.stillWanted?.()).toBe(false);
    txm.releaseAll();
    await round;
  });

  test('heartbeats are sent as priority txs with their worst-case gas floor', async () => {
    const { ctx, store, txm, send } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    await heartbeatRound(ctx, send);
    expect(txm.submitted[0]?.priority).toBe(true);
    expect(txm.submitted[0]?.minGasLimit).toBeGreaterThan(0n);
  });
});

describe('heartbeat hygiene', () => {
  test('no heartbeat once the complete or fail holds a nonce; one decided before is withdrawn at its turn; heartbeatable again when it reverts or fails', async () => {
    const { ctx, store, settle, tracker, txm, send } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), { ...held('1', 'completing', NOW_S - 10), result_ref: 'r' });
      tx.put(inflightKey('2'), { ...held('2', 'failing', NOW_S - 10), fail_reason: 'x' });
    });
    // The complete is still being prepared (no nonce yet): the heartbeat is due as usual (it can only go first).
    const complete = tracker.begin('complete', ['1']);
    tracker.begin('fail', ['2']).sent(7);
    expect([...dueHeartbeats(ctx, NOW_S).keys()]).toEqual(['1']);
    const round = heartbeatRound(ctx, send);
    await untilTrue(() => txm.submitted.length === 1);
    const hb = txm.submitted[0];
    expect(hb?.stillWanted?.()).toBe(true);
    // The complete takes its nonce before the heartbeat's turn: the heartbeat would land after it, so it withdraws.
    complete.sent(8);
    expect(hb?.stillWanted?.()).toBe(false);
    // Or the complete was even mined and settled (released from the lane, the record resuming): withdrawn too.
    tracker.release('complete', ['1'], 8);
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'resuming', NOW_S - 10), result_ref: 'r' }));
    expect(hb?.stillWanted?.()).toBe(false);
    // (back to the complete in the lane, for what follows)
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'completing', NOW_S - 10), result_ref: 'r' }));
    complete.sent(8);
    txm.releaseAll();
    await round;
    expect([...dueHeartbeats(ctx, NOW_S).keys()]).toEqual([]);
    // The fail reverted on chain: its id is heartbeated again.
    const fail = { kind: 'fail' as const, to: TQ_ADDR, data: '0x', activityIds: ['2'] };
    await settle({ ...confirmed(fail, 7, []), status: 'reverted' });
    expect([...dueHeartbeats(ctx, NOW_S).keys()]).toEqual(['2']);
    // The complete's nonce was given up (the tx failed): heartbeated again.
    await settle({
      type: 'failed',
      kind: 'complete',
      nonce: 8,
      activityIds: ['1'],
      error: { code: 'TX_REFUSED', message: 'refused', retryable: true },
    });
    expect([...dueHeartbeats(ctx, NOW_S).keys()]).toEqual(['1', '2']);
  });
});
