import { afterEach, describe, expect, test } from 'bun:test';
import type { ActivityFact } from '../chain/facts.ts';
import { claimJobKey, doneKey, inflightKey, laneKey } from '../store/keys.ts';
import { ClaimJobSchema, InflightSchema } from '../store/records.ts';
import { createClaimStep } from './claim.ts';
import { createClaimGate } from './claim-gate.ts';
import { cleanupTestContexts, confirmed, mined, readyLink, testContext, testSteps } from './testing/fakes.ts';
import { untilTrue } from '../internal/testing/until.ts';
import { held, NOW_S, OTHER, WALLET } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  const { send, recheck, settle } = testSteps(t);
  const gate = createClaimGate(t.ctx, { link: readyLink(), credits: () => 100 });
  const claim = createClaimStep(t.ctx, { send, recheck: recheck.recheck, gate });
  return { ...t, send, recheck, claim, settle, gate };
}

/** What a scan read before our claim landed: the activity still Pending. */
function pendingFact(id: string): ActivityFact {
  return {
    activityId: id,
    exists: true,
    queue: 'q',
    workflowInstance: '0',
    stepIndex: 0,
    activityType: 'echo',
    inputRef: '',
    status: 1,
    worker: '0x0000000000000000000000000000000000000000',
    enqueuedAtS: NOW_S - 10,
    claimedAtS: 0,
    lastHeartbeatAtS: 0,
    heartbeatTimeoutS: 600,
    expiresAtS: NOW_S + 3600,
    finishedAtS: 0,
    isCompleted: false,
    isExpired: false,
    resultRef: '',
    nowS: NOW_S,
    blockNumber: 99,
  };
}

async function addJob(store: ReturnType<typeof testContext>['store'], id: string) {
  await store.transact((tx) =>
    tx.put(claimJobKey(id), { activity_id: id, queue_name: 'q', created_at_ms: 1, source: 'poll' }),
  );
}

describe('a claim reorged away', () => {
  test('held but pending again on chain with no claim tx of ours in the lane → claim queue, claimed again', async () => {
    const { store, txm, rpc, claim, recheck } = setup();
    txm.auto = true;
    // Rebuilt from the chain by a life whose lane records were wiped; then a reorg removed that claim.
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running', NOW_S - 10)));
    rpc.activities.set('1', { status: 1 });
    await recheck.recheck(['1'], 'heartbeat mined without accepting it');
    expect(store.has(inflightKey('1'))).toBe(false);
    expect(store.get(claimJobKey('1'), ClaimJobSchema)?.source).toBe('reconcile');
    await claim.run(true);
    expect(txm.submitted.map((r) => `${r.kind}(${r.activityIds.join(',')})`)).toEqual(['claim_batch(1)']);
  });

  test('a claim tx of ours still open in the lane is left to the tx manager', async () => {
    const { store, rpc, recheck } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'claimed', NOW_S - 10));
      tx.put(laneKey(3), {
        nonce: 3,
        kind: 'claim_batch',
        activity_ids: ['1'],
        to: '0x01',
        data: '0x',
        gas_limit: '1',
        max_fee_per_gas: '1',
        max_priority_fee_per_gas: '1',
        hashes: [],
        attempts: 1,
        state: 'sent',
        created_at_ms: 1,
        updated_at_ms: 1,
      });
    });
    rpc.activities.set('1', { status: 1 });
    await recheck.recheck(['1'], 'heartbeat mined without accepting it');
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claimed');
  });

  test('a done whose fact vanished is repaired back; a scan fact is trusted only once re-read', async () => {
    const { store, rpc, recheck } = setup();
    await store.transact((tx) => tx.put(doneKey('1'), { activity_id: '1', outcome: 'expired', finished_at_ms: 1 }));
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    await recheck.applyFacts([pendingFact('1')], 'reconciler'); // stale: re-read says claimed by us
    expect(store.has(claimJobKey('1'))).toBe(false);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claimed');
    await store.transact((tx) => {
      tx.del(inflightKey('1'));
      tx.put(doneKey('1'), { activity_id: '1', outcome: 'completed', result_ref: 'r', finished_at_ms: 1 });
    });
    rpc.activities.set('1', { status: 1 });
    await recheck.applyFacts([pendingFact('1')], 'reconciler');
    expect(store.has(doneKey('1'))).toBe(false);
    expect(store.has(claimJobKey('1'))).toBe(true);
  });
});

describe('claim step', () => {
  test('a claim job becomes a claiming record and one batch claim', async () => {
    const { store, txm, claim } = setup();
    txm.auto = true;
    await addJob(store, '1');
    await addJob(store, '2');
    await claim.run(true);
    expect(txm.submitted.map((r) => `${r.kind}(${r.activityIds.join(',')})`)).toEqual(['claim_batch(1,2)']);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claiming');
    expect(store.has(claimJobKey('1'))).toBe(false);
  });

  test('stale facts arriving while the claim waits for its turn in the lane do not put it back in the claim queue', async () => {
    const { store, txm, claim, recheck } = setup();
    await addJob(store, '1');
    const round = claim.run(true); // the claim's submit waits (lane busy)
    await untilTrue(() => txm.submitted.length === 1);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claiming');
    await recheck.applyFacts([pendingFact('1')], 'reconciler');
    txm.releaseAll();
    await round;
    expect(store.has(claimJobKey('1'))).toBe(false);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claiming');
  });

  test('a claim sent but not yet confirmed stays claiming under stale facts and periodic re-checks; its receipt makes it claimed', async () => {
    const { store, txm, rpc, claim, recheck, settle } = setup();
    txm.auto = true;
    await addJob(store, '1');
    await claim.run(true);
    // The chain has not mined it yet: a read says Pending, and so does a fact the reconciler read earlier.
    rpc.activities.set('1', { status: 1 });
    await recheck.applyFacts([pendingFact('1')], 'reconciler');
    await recheck.recheck(['1'], 'periodic');
    expect(store.has(claimJobKey('1'))).toBe(false);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claiming');

    const req = txm.submitted[0];
    if (!req) throw new Error('no claim sent');
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    await settle(confirmed(req, 0, [['ActivityClaimed', '1']]));
    const r = store.get(inflightKey('1'), InflightSchema);
    expect(r?.state).toBe('claimed');
    expect(r?.activity_type).toBe('echo');
    await recheck.applyFacts([pendingFact('1')], 'reconciler'); // a stale fact after the claim landed
    expect(store.has(claimJobKey('1'))).toBe(false);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claimed');
  });

  test('a landed claim whose details are still being read is not put back in the claim queue', async () => {
    const { store, txm, rpc, claim, recheck, settle, tracker } = setup();
    txm.auto = true;
    await addJob(store, '1');
    await claim.run(true);
    const req = txm.submitted[0];
    if (!req) throw new Error('no claim sent');
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    const openReads = rpc.hold('eth_call');
    const settling = settle(confirmed(req, 0, [['ActivityClaimed', '1']]));
    await untilTrue(() => rpc.calls.includes('eth_call'));
    expect(tracker.has('1')).toBe(true);
    await recheck.applyFacts([pendingFact('1')], 'reconciler');
    openReads();
    await settling;
    expect(store.has(claimJobKey('1'))).toBe(false);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claimed');
    expect(tracker.has('1')).toBe(false);
  });

  test('a claim that never landed (no tx in flight, chain still Pending) goes back to the claim queue', async () => {
    const { store, txm, claim, recheck, tracker } = setup();
    txm.auto = true;
    await addJob(store, '1');
    await claim.run(true);
    tracker.release('claim_batch', ['1'], 0); // its tx failed and the failure was handled
    await recheck.applyFacts([pendingFact('1')], 'reconciler');
    expect(store.has(claimJobKey('1'))).toBe(true);
    expect(store.has(inflightKey('1'))).toBe(false);
  });

  test('no claims when disabled, in observe mode or with no room', async () => {
    const { ctx, store, txm, send, recheck, claim, gate } = setup();
    await addJob(store, '1');
    await claim.run(false);
    await createClaimStep(
      { ...ctx, opts: { ...ctx.opts, mode: 'observe' } },
      { send, recheck: recheck.recheck, gate },
    ).run(true);
    await createClaimStep(
      { ...ctx, opts: { ...ctx.opts, maxInflight: 0 } },
      { send, recheck: recheck.recheck, gate },
    ).run(true);
    expect(txm.submitted).toEqual([]);
    expect(store.has(claimJobKey('1'))).toBe(true);
  });

  test('max_inflight counts work not yet finished by the executor: records only completing or resuming do not hold a slot', async () => {
    const { ctx, store, txm, send, recheck, gate } = setup();
    txm.auto = true;
    const claim = createClaimStep(
      { ...ctx, opts: { ...ctx.opts, maxInflight: 2 } },
      { send, recheck: recheck.recheck, gate },
    );
    await store.transact((tx) => {
      tx.put(inflightKey('10'), held('10', 'completing'));
      tx.put(inflightKey('11'), held('11', 'resuming'));
      tx.put(inflightKey('12'), held('12', 'running'));
    });
    await addJob(store, '1');
    await addJob(store, '2');
    await claim.run(true);
    // One slot is taken (12 running); 10 and 11 wait only on the chain.
    expect(txm.submitted.map((r) => `${r.kind}(${r.activityIds.join(',')})`)).toEqual(['claim_batch(1)']);
  });

  test('a claim whose submit throws (a transient RPC failure past its retries) goes back to the claim queue at once', async () => {
    const { store, txm, claim } = setup();
    await addJob(store, '1');
    txm.submit = async () => {
      throw new Error('eth_estimateGas: connection reset');
    };
    await claim.run(true);
    expect(store.has(inflightKey('1'))).toBe(false); // never left in `claiming` without a transaction
    expect(store.has(claimJobKey('1'))).toBe(true);
  });
});

describe('claim mined (not yet confirmed)', () => {
  test('the ids it won are claimed, read and dispatchable at once; ids it did not win wait for the confirmation', async () => {
    const { store, txm, rpc, claim, settle, tracker } = setup();
    txm.auto = true;
    await addJob(store, '1');
    await addJob(store, '2');
    await claim.run(true);
    const req = txm.submitted[0];
    if (!req) throw new Error('no claim sent');
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    await settle(
      mined(req, 0, [
        ['ActivityClaimed', '1'],
        ['ActivityClaimed', '2', OTHER],
      ]),
    );
    const r1 = store.get(inflightKey('1'), InflightSchema);
    expect([r1?.state, r1?.activity_type, r1?.last_heartbeat_s]).toEqual(['claimed', 'echo', NOW_S]);
    expect(tracker.has('1')).toBe(false);
    expect(store.get(inflightKey('2'), InflightSchema)?.state).toBe('claiming');
    expect(tracker.has('2')).toBe(true);
    // The confirmation changes nothing for the won id; the lost one goes to the re-check.
    await settle(
      confirmed(req, 0, [
        ['ActivityClaimed', '1'],
        ['ActivityClaimed', '2', OTHER],
      ]),
    );
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claimed');
    expect(tracker.has('2')).toBe(false);
  });

  test('a reorged claim puts its ids back in flight until it is mined again', async () => {
    const { store, txm, rpc, claim, settle, tracker } = setup();
    txm.auto = true;
    await addJob(store, '1');
    await claim.run(true);
    const req = txm.submitted[0];
    if (!req) throw new Error('no claim sent');
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    await settle(mined(req, 0, [['ActivityClaimed', '1']]));
    expect(tracker.has('1')).toBe(false);
    await settle({ type: 'reorged', kind: 'claim_batch', nonce: 0, activityIds: ['1'], hash: '0x', blockNumber: 100 });
    expect(tracker.has('1')).toBe(true);
    await settle(mined(req, 0, [['ActivityClaimed', '1']], 101));
    expect(tracker.has('1')).toBe(false);
  });
});

describe('a claim round', () => {
  test('one claim call of at most claim_batch ids per round, one transaction per call', async () => {
    const { store, txm, claim } = setup();
    txm.auto = true;
    for (let i = 1; i <= 20; i++) await addJob(store, String(i));
    await claim.run(true);
    expect(txm.submitted.map((r) => r.activityIds.length)).toEqual([8]);
  });

  test('batching: one round claims up to 4 × claim_batch in calls of claim_batch ids', async () => {
    const t = setup();
    t.ctx.opts = { ...t.ctx.opts, maxInflight: 100, batch: { mode: 'batch', executor: '0x01' } };
    const claim = createClaimStep(t.ctx, { send: t.send, recheck: t.recheck.recheck, gate: t.gate });
    t.txm.auto = true;
    for (let i = 1; i <= 40; i++) await addJob(t.store, String(i));
    await claim.run(true);
    expect(t.txm.submitted.map((r) => [r.kind, r.activityIds.length])).toEqual([
      ['claim_batch', 8],
      ['claim_batch', 8],
      ['claim_batch', 8],
      ['claim_batch', 8],
    ]);
    expect(new Set(t.txm.submitted.flatMap((r) => r.activityIds)).size).toBe(32);
    for (const id of t.txm.submitted.flatMap((r) => r.activityIds))
      expect(t.store.get(inflightKey(id), InflightSchema)?.state).toBe('claiming');
  });
});
