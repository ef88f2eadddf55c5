import { afterEach, describe, expect, test } from 'bun:test';
import { claimJobKey, inflightKey } from '../store/keys.ts';
import { ClaimJobSchema, type ClaimJob } from '../store/records.ts';
import { createClaimStep } from './claim.ts';
import { createClaimGate } from './claim-gate.ts';
import { createLinkView } from './link.ts';
import { cleanupTestContexts, testContext, testSteps } from './testing/fakes.ts';
import { held } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  t.txm.auto = true;
  const link = createLinkView();
  let credits = 4;
  const gate = createClaimGate(t.ctx, { link, credits: () => credits });
  const { send, recheck } = testSteps(t);
  const claim = createClaimStep(t.ctx, { send, recheck: recheck.recheck, gate });
  const job = (id: string, extra: Partial<ClaimJob> = {}) =>
    t.store.transact((tx) =>
      tx.put(claimJobKey(id), {
        activity_id: id,
        queue_name: 'q',
        created_at_ms: 1,
        source: 'poll',
        activity_type: 'echo',
        input_ref: 'json:{}',
        ...extra,
      }),
    );
  const claimed = () => t.txm.submitted.flatMap((r) => r.activityIds);
  const paused = async (reason: string) =>
    (await t.ctx.metrics.claimsPaused.get()).values.find((v) => v.labels.reason === reason)?.value;
  return {
    ...t,
    link,
    gate,
    claim,
    job,
    claimed,
    paused,
    setCredits: (n: number) => {
      credits = n;
    },
  };
}

describe('claim gate: claim only what can run now', () => {
  test('no executor ready: nothing claimed, paused as executor_not_ready; ready: claimed', async () => {
    const { link, gate, claim, job, claimed, paused } = setup();
    await job('1');
    await claim.run(true);
    expect(claimed()).toEqual([]);
    expect(gate.reason()).toBe('executor_not_ready');
    expect(await paused('executor_not_ready')).toBe(1);
    link.onState({ type: 'state', state: 'ready', activity_types: ['echo'] });
    await claim.run(true);
    expect(claimed()).toEqual(['1']);
    expect(gate.reason()).toBeNull();
    expect(await paused('executor_not_ready')).toBe(0);
  });

  test('no more claims than free credits (claimed records waiting for dispatch take them first)', async () => {
    const { store, link, gate, claim, job, claimed, setCredits } = setup();
    link.onState({ type: 'state', state: 'ready', activity_types: ['echo'] });
    for (const id of ['1', '2', '3', '4']) await job(id);
    await store.transact((tx) => tx.put(inflightKey('9'), held('9', 'claimed')));
    setCredits(3);
    await claim.run(true);
    expect(claimed()).toEqual(['1', '2']);
    setCredits(0);
    await claim.run(true);
    expect(claimed()).toEqual(['1', '2']);
    expect(gate.reason()).toBe('no_executor_credits');
  });

  test('types the executor does not serve are left; blob inputs wait while storage is unavailable', async () => {
    const { link, gate, claim, job, claimed } = setup();
    link.onState({ type: 'state', state: 'ready', activity_types: ['echo'] });
    link.setStorage(false);
    await job('1', { activity_type: 'video' });
    await job('2', { input_ref: 'blob:seed/in.mp4' });
    await claim.run(true);
    expect(claimed()).toEqual([]);
    expect(gate.reason()).toBe('storage_unavailable');
    await job('3');
    await claim.run(true);
    expect(claimed()).toEqual(['3']);
    link.setStorage(true);
    await claim.run(true);
    expect(claimed()).toEqual(['3', '2']);
  });

  test('a type that declares outputs (presigned uploads) also waits while storage is unavailable', async () => {
    const { link, gate, claim, job, claimed } = setup();
    link.onState({ type: 'state', state: 'ready', activity_types: ['echo', 'render'], storage_types: ['render'] });
    link.setStorage(false);
    await job('1', { activity_type: 'render' });
    await claim.run(true);
    expect(claimed()).toEqual([]);
    expect(gate.reason()).toBe('storage_unavailable');
    await job('2');
    await claim.run(true);
    expect(claimed()).toEqual(['2']);
    link.setStorage(true);
    await claim.run(true);
    expect(claimed()).toEqual(['2', '1']);
  });

  test('a storage service refusing the worker pauses claims needing storage as storage_refused', async () => {
    const { link, gate, claim, job, claimed, paused } = setup();
    link.onState({ type: 'state', state: 'ready', activity_types: ['echo', 'render'], storage_types: ['render'] });
    link.setStorage(false, { reason: 'session_ttl_too_long', detail: 'delegation_too_long: …' });
    await job('1', { activity_type: 'render' });
    await claim.run(true);
    expect(claimed()).toEqual([]);
    expect(gate.reason()).toBe('storage_refused');
    expect(await paused('storage_refused')).toBe(1);
    expect(await paused('storage_unavailable')).toBe(0);
    link.setStorage(false);
    await claim.run(true);
    expect(gate.reason()).toBe('storage_unavailable');
    link.setStorage(true);
    await claim.run(true);
    expect(claimed()).toEqual(['1']);
    expect(await paused('storage_refused')).toBe(0);
  });

  test("until the storage service's first answer, work needing storage waits (no pause recorded)", async () => {
    const { link, gate, claim, job, claimed } = setup();
    link.onState({
      type: 'state',
      state: 'ready',
      activity_types: ['render'],
      storage_types: ['render'],
      storage_pending: true,
    });
    expect(link.storage().state).toBe('pending');
    await job('1', { activity_type: 'render' });
    await claim.run(true);
    expect(claimed()).toEqual([]);
    expect(gate.reason()).toBeNull();
    link.setStorage(false, { reason: 'not_storage_service', detail: 'UNIMPLEMENTED' });
    await claim.run(true);
    expect(claimed()).toEqual([]);
    expect(gate.reason()).toBe('storage_refused');
  });

  test('a job recorded without its type (from chain events) has it read from the chain first', async () => {
    const { store, rpc, link, claim, job, claimed } = setup();
    link.onState({ type: 'state', state: 'ready', activity_types: ['echo'] });
    rpc.activities.set('1', { status: 1, activityType: 'video' });
    rpc.activities.set('2', { status: 1, activityType: 'echo' });
    await job('1', { activity_type: undefined, input_ref: undefined });
    await job('2', { activity_type: undefined, input_ref: undefined });
    await claim.run(true);
    expect(claimed()).toEqual(['2']);
    expect(store.get(claimJobKey('1'), ClaimJobSchema)?.activity_type).toBe('video');
  });
});
