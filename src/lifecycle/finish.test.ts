import { afterEach, describe, expect, test } from 'bun:test';
import { readFacts } from '../chain/reads.ts';
import { doneKey, inflightKey } from '../store/keys.ts';
import { type DoneOutcome, DoneSchema, type Inflight, InflightSchema } from '../store/records.ts';
import { endDecision, finishCall } from './effects.ts';
import { cleanupTestContexts, confirmed, testContext, testSteps } from './testing/fakes.ts';
import { untilTrue } from '../internal/testing/until.ts';
import { held, NOW_S, testOptions, WALLET } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  const { runner, recheck, settle } = testSteps(t);
  const finish = {
    /** The finishing call of `r`, run as the effect its decision names. */
    submitFinish: async (r: Inflight) => {
      const call = finishCall(r);
      if (!call) throw new Error(`no finishing call for ${r.state}`);
      await runner.run([call]);
    },
    finish: (id: string, outcome: DoneOutcome) =>
      runner.decide([id], (rs) => endDecision(id, rs.get(id), outcome, Date.now())),
  };
  return { ...t, runner, recheck, settle, finish };
}

const sent = (reqs: Array<{ kind: string; activityIds: string[] }>) =>
  reqs.map((r) => `${r.kind}(${r.activityIds.join(',')})`);
const completing = (id: string) => ({ ...held(id, 'completing'), result_ref: 'json:{"result":"r"}' });

describe('finish step', () => {
  test('a complete is not re-sent while one waits for its turn in the lane', async () => {
    const { store, txm, finish } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), completing('1')));
    const first = finish.submitFinish(completing('1'));
    await untilTrue(() => txm.submitted.length === 1);
    await finish.submitFinish(completing('1'));
    txm.releaseAll();
    await first;
    expect(sent(txm.submitted)).toEqual(['complete(1)']);
  });

  test('a complete in flight is not re-sent by a re-check that still sees the activity claimed on chain', async () => {
    const { store, txm, rpc, finish, recheck } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), completing('1')));
    await finish.submitFinish(completing('1'));
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    await recheck.recheck(['1'], 'periodic');
    await recheck.applyFacts(await readFacts(rpc, testOptions, ['1']), 'reconciler');
    expect(sent(txm.submitted)).toEqual(['complete(1)']);
  });

  test('a complete whose tx is gone (not in flight) and the chain still claimed by us is sent again', async () => {
    const { store, txm, rpc, recheck } = setup();
    txm.auto = true;
    await store.transact((tx) => tx.put(inflightKey('1'), completing('1')));
    rpc.activities.set('1', { status: 2, worker: WALLET, lastHeartbeatAt: NOW_S });
    await recheck.recheck(['1'], 'periodic');
    expect(sent(txm.submitted)).toEqual(['complete(1)']);
  });

  test('a landed complete moves to resuming and sends the resume; the landed resume ends the record', async () => {
    const { store, txm, finish, settle, tracker } = setup();
    txm.auto = true;
    const r = { ...completing('1'), workflow_instance: '4' };
    await store.transact((tx) => tx.put(inflightKey('1'), r));
    await finish.submitFinish(r);
    const [complete] = txm.submitted;
    if (!complete) throw new Error('no complete sent');
    await settle(confirmed(complete, 0, [['ActivityCompleted', '1']]));
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('resuming');
    expect(sent(txm.submitted)).toEqual(['complete(1)', 'resume(1)']);
    expect(tracker.has('1')).toBe(true); // the resume's tx, not released by the complete's settle
    const resume = txm.submitted[1];
    if (!resume) throw new Error('no resume sent');
    await settle(confirmed(resume, 1, []));
    expect(store.has(inflightKey('1'))).toBe(false);
    expect(store.get(doneKey('1'), DoneSchema)).toMatchObject({
      outcome: 'completed',
      resumed: true,
      result_ref: 'json:{"result":"r"}',
    });
    expect(tracker.size()).toBe(0);
  });

  test('a record that expired before its result could be written is ended, nothing sent', async () => {
    const { store, txm, finish, clock } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), completing('1')));
    clock.set(NOW_S + 3601);
    await finish.submitFinish(completing('1'));
    expect(txm.submitted).toEqual([]);
    expect(store.get(doneKey('1'), DoneSchema)?.outcome).toBe('expired');
  });

  test('finish ends the record, cancels it at the executor when it held it, and forgets its txs', async () => {
    const { store, executor, finish, tracker } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    tracker.restore('heartbeat', ['1'], 3);
    await finish.finish('1', 'lost');
    expect(store.has(inflightKey('1'))).toBe(false);
    expect(store.get(doneKey('1'), DoneSchema)?.outcome).toBe('lost');
    expect(executor.cancelled).toEqual(['1']);
    expect(tracker.heartbeats.inFlight('1')).toBe(false);
  });
});
