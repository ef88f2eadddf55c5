import { afterEach, describe, expect, test } from 'bun:test';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import { cleanupTestContexts, testContext, executorSide } from './testing/fakes.ts';
import { held, NOW_S } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

function setup() {
  const t = testContext();
  const { link, dispatch, finished, completions, onExecutor } = executorSide(t);
  return { ...t, dispatch, onExecutor, finished, link, completions };
}

describe('dispatch step', () => {
  test('offers ready claimed records, as many as there are credits, counting the attempt', async () => {
    const { store, executor, dispatch } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'claimed'));
      tx.put(inflightKey('2'), held('2', 'claimed'));
      tx.put(inflightKey('3'), { ...held('3', 'claimed'), activity_type: undefined }); // details not read yet
    });
    dispatch.setCredits(1);
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['1']);
    expect(dispatch.credits()).toBe(0);
    expect(store.get(inflightKey('1'), InflightSchema)).toMatchObject({ state: 'assigned', dispatch_attempts: 1 });
    dispatch.setCredits(5);
    await dispatch.run(false); // draining
    expect(executor.assigned).toEqual(['1']);
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['1', '2']);
  });

  test('a credits figure computed before some of our assigns reached the bridge does not make it overshoot', async () => {
    const { store, executor, dispatch } = setup();
    await store.transact((tx) => {
      for (const id of ['1', '2', '3', '4']) tx.put(inflightKey(id), held(id, 'claimed'));
    });
    dispatch.setCredits(2, 0);
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['1', '2']);
    // The bridge's figure crossed our two assigns on the port: it still says 2 free, having seen none of them.
    dispatch.setCredits(2, 0);
    expect(dispatch.credits()).toBe(0);
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['1', '2']);
    // Once it has seen both, its figure is current.
    dispatch.setCredits(1, 2);
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['1', '2', '3']);
  });

  test('skips records with a tx in flight, expired ones and those deferred after a refusal', async () => {
    const { store, executor, dispatch, tracker } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'claimed'));
      tx.put(inflightKey('2'), { ...held('2', 'claimed'), expires_at_s: NOW_S - 1 });
      tx.put(inflightKey('3'), held('3', 'claimed'));
    });
    tracker.restore('complete', ['1'], 0);
    dispatch.defer('3', 60_000);
    dispatch.setCredits(5);
    await dispatch.run(true);
    expect(executor.assigned).toEqual([]);
  });

  test('a retryable refusal keeps the attempt spent (not counted) and defers; a retryable failure re-offers until maxDispatchAttempts', async () => {
    const { store, executor, dispatch, onExecutor, finished } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'claimed')));
    dispatch.setCredits(5);
    await dispatch.run(true);
    await onExecutor({ type: 'assignRejected', activity_id: '1', reason: 'no_credits', retryable: true });
    expect(store.get(inflightKey('1'), InflightSchema)).toMatchObject({
      state: 'claimed',
      dispatch_attempts: 1,
      refused_dispatches: 1,
    });
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['1']); // deferred
    for (let attempt = 2; attempt <= 4; attempt++) {
      dispatch.forget('1'); // the retry delay passed
      await dispatch.run(true);
      await onExecutor({
        type: 'completion',
        activity_id: '1',
        attempt,
        result: { ok: false, retryable: true, code: 'X', message: 'boom' },
      });
    }
    expect(executor.assigned).toEqual(['1', '1', '1', '1']);
    expect(store.get(inflightKey('1'), InflightSchema)).toMatchObject({ state: 'failing', fail_reason: 'X: boom' });
    expect(finished).toEqual(['1:failing']);
  });

  test('a storage service refusing the worker: claimed work needing storage waits (never failed), then runs', async () => {
    const { store, executor, dispatch, onExecutor, finished, link } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), { ...held('1', 'claimed'), input_ref: 'blob:seed/in.mp4' });
      tx.put(inflightKey('2'), held('2', 'claimed')); // json input, no declared outputs: needs no storage
    });
    dispatch.setCredits(5);
    await onExecutor({
      type: 'storage',
      available: false,
      refused: 'not_storage_service',
      detail: 'grpc status UNIMPLEMENTED',
    });
    expect(link.storage()).toMatchObject({ state: 'refused', reason: 'not_storage_service' });
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['2']);
    // An assignment the bridge refused for the same cause goes back to claimed, its dispatch not counted.
    await onExecutor({ type: 'assignRejected', activity_id: '2', reason: 'storage_refused', retryable: true });
    expect(store.get(inflightKey('2'), InflightSchema)).toMatchObject({ state: 'claimed', refused_dispatches: 1 });
    dispatch.forget('2');
    for (let i = 0; i < 3; i++) await dispatch.run(true);
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('claimed');
    expect(finished).toEqual([]);
    await onExecutor({ type: 'storage', available: true });
    await dispatch.run(true);
    expect(executor.assigned).toEqual(['2', '2', '1']);
    expect(finished).toEqual([]);
  });

  test('a completion of an earlier attempt is ignored; the current one moves the record to completing', async () => {
    const { store, onExecutor, finished } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 2 }));
    const ok = { ok: true as const, output_refs: { result: 'r' }, metadata_json: '{}' };
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: ok });
    expect(store.get(inflightKey('1'), InflightSchema)?.state).toBe('running');
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 2, result: ok });
    expect(store.get(inflightKey('1'), InflightSchema)).toMatchObject({
      state: 'completing',
      result_ref: 'json:{"result":"r"}',
    });
    expect(finished).toEqual(['1:completing']);
  });
});
