/**
 * `claims_paused` tells the truth: every reason the claim step stops for is held in the pause set (and its gauge)
 * while its cause lasts, several at once, and released in the first round the cause is gone, whether or not a job
 * is waiting.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { claimJobKey, inflightKey } from '../store/keys.ts';
import { createClaimStep } from './claim.ts';
import { createClaimGate } from './claim-gate.ts';
import { createLinkView } from './link.ts';
import { createSend } from './send.ts';
import { cleanupTestContexts, testContext, testSteps } from './testing/fakes.ts';
import { held } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  t.txm.auto = true;
  const link = createLinkView();
  const gate = createClaimGate(t.ctx, { link, credits: () => 4 });
  const { recheck } = testSteps(t);
  const claim = createClaimStep(t.ctx, { send: createSend(t.ctx), recheck: recheck.recheck, gate });
  const job = (id: string) =>
    t.store.transact((tx) =>
      tx.put(claimJobKey(id), {
        activity_id: id,
        queue_name: 'q',
        created_at_ms: 1,
        source: 'poll',
        activity_type: 'echo',
        input_ref: 'json:{}',
      }),
    );
  const gauge = async () =>
    Object.fromEntries(
      (await t.ctx.metrics.claimsPaused.get()).values.filter((v) => v.value === 1).map((v) => [v.labels.reason, 1]),
    );
  const ready = () => link.onState({ type: 'state', state: 'ready', activity_types: ['echo'] });
  const claimed = () => t.txm.submitted.flatMap((r) => r.activityIds);
  return { ...t, link, gate, claim, job, gauge, ready, claimed, pauses: gate.pauses };
}

describe('claim pauses', () => {
  test('an executor blip is released in the next round even with no job waiting', async () => {
    const { link, claim, ready, pauses, gauge } = setup();
    ready();
    await claim.run(true);
    expect(pauses.list()).toEqual([]);
    link.onState({ type: 'state', state: 'connecting' });
    await claim.run(true);
    expect(pauses.list()).toEqual(['executor_not_ready']);
    ready();
    await claim.run(true);
    expect(pauses.list()).toEqual([]);
    expect(await gauge()).toEqual({});
  });

  test('several reasons at once are all listed (gauge and list); each clears with its cause', async () => {
    const { txm, store, claim, job, ready, pauses, gauge, claimed } = setup();
    await job('1');
    let pending = 14; // lane of 16, 2 kept free: full
    txm.inFlight = () => pending;
    await store.transact((tx) => {
      for (let i = 0; i < 8; i++) tx.put(inflightKey(String(100 + i)), held(String(100 + i), 'running'));
    });
    pauses.set('foreign_transaction', true, { nonce: 3 });
    await claim.run(true);
    expect(pauses.list()).toEqual(['foreign_transaction', 'executor_not_ready', 'lane_full', 'max_inflight']);
    expect(await gauge()).toEqual({ foreign_transaction: 1, executor_not_ready: 1, lane_full: 1, max_inflight: 1 });
    expect(claimed()).toEqual([]);

    ready();
    pending = 0;
    await claim.run(true);
    expect(pauses.list()).toEqual(['foreign_transaction', 'max_inflight']);
    await store.transact((tx) => {
      for (let i = 0; i < 8; i++) tx.del(inflightKey(String(100 + i)));
    });
    await claim.run(true);
    expect(pauses.list()).toEqual(['foreign_transaction']);
    expect(claimed()).toEqual([]);
    pauses.clear('foreign_transaction');
    await claim.run(true);
    expect(pauses.list()).toEqual([]);
    expect(claimed()).toEqual(['1']);
  });

  test('a simulation saying the wallet is not an active worker holds worker_inactive until the watch sees it active', async () => {
    const { txm, claim, job, ready, pauses, claimed } = setup();
    ready();
    await job('1');
    let active = false;
    txm.simulate = async () =>
      active
        ? { ok: true as const, returnData: '0x' }
        : {
            ok: false as const,
            error: { code: 'TX_REVERTED', message: 'NotActiveWorker', retryable: false },
            revert: { name: 'NotActiveWorker', message: 'NotActiveWorker(0x…)', args: [] },
          };
    await claim.run(true);
    expect(pauses.list()).toEqual(['worker_inactive']);
    await claim.run(true);
    expect(claimed()).toEqual([]);
    // The watch reads isWorkerActive = true: released at once, not after the simulation's 30 s.
    active = true;
    pauses.clear('worker_inactive');
    await claim.run(true);
    expect(pauses.list()).toEqual([]);
    expect(claimed()).toEqual(['1']);
  });

  test('a reason held by two sources holds until both release it', () => {
    const { pauses } = setup();
    pauses.set('wallet_unfunded', true, { detail: 'insufficient funds' }, 'lane');
    pauses.set('wallet_unfunded', true, { lifecycles: 0 }, 'balance');
    pauses.set('wallet_unfunded', false, {}, 'lane');
    expect(pauses.list()).toEqual(['wallet_unfunded']);
    expect(pauses.details()).toEqual({ wallet_unfunded: { lifecycles: 0 } });
    pauses.set('wallet_unfunded', false, {}, 'balance');
    expect(pauses.list()).toEqual([]);
  });
});
