import { afterEach, describe, expect, test } from 'bun:test';
import { inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import { createLinkView } from './link.ts';
import { cleanupTestContexts, testContext, executorSide } from './testing/fakes.ts';
import { held } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

/** The executor side of the lifecycle over a link that is not ready yet (a wcp just started). */
function setup() {
  const t = testContext();
  const { link, dispatch, finished, onExecutor } = executorSide(t, { link: createLinkView() });
  const state = (id: string) => t.store.get(inflightKey(id), InflightSchema);
  const ready = () => onExecutor({ type: 'state', state: 'ready', activity_types: ['echo'] });
  const down = () => onExecutor({ type: 'state', state: 'backoff' });
  return { ...t, link, dispatch, onExecutor, finished, state, ready, down };
}

describe('executor held work across a wcp restart', () => {
  test('records the executor holds are re-offered with their attempt (no new run); the others are lost', async () => {
    const { store, executor, onExecutor, ready, state, dispatch } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 2 });
      tx.put(inflightKey('2'), held('2', 'assigned'));
    });
    await onExecutor({ type: 'resync', running_activity_ids: [], lost_activity_ids: [], held_activity_ids: ['1'] });
    await ready();
    expect(executor.tasks).toEqual([expect.objectContaining({ activity_id: '1', attempt: 2, reoffer: true })]);
    expect(state('1')).toMatchObject({ state: 'running', dispatch_attempts: 2 });
    expect(state('2')).toMatchObject({ state: 'claimed', dispatch_attempts: 1 });
    // The lost one is dispatched anew (attempt 2); the held one never again.
    dispatch.forget('2');
    dispatch.setCredits(5);
    await dispatch.run(true);
    expect(executor.tasks.map((t) => `${t.activity_id}:${t.attempt}:${t.reoffer ?? false}`)).toEqual([
      '1:2:true',
      '2:2:false',
    ]);
  });

  test('a link ready without a Resync means the executor holds nothing: every executing record is lost', async () => {
    const { store, ready, state } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    await ready();
    expect(state('1')?.state).toBe('claimed');
  });

  test("a run lost across a wcp restart does not count toward max_dispatch_attempts (it was not the task's fault)", async () => {
    const { store, ready, state } = setup();
    // Dispatched 3 times (the maximum) by earlier lives; the executor does not hold it after this restart.
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 3 }));
    await ready();
    expect(state('1')).toMatchObject({ state: 'claimed', dispatch_attempts: 3, refused_dispatches: 1 });
  });

  test('a held record rebuilt from chain (claimed) is re-offered, even with no credits, never assigned anew', async () => {
    const { store, executor, onExecutor, ready, state, dispatch } = setup();
    await onExecutor({ type: 'resync', running_activity_ids: [], lost_activity_ids: [], held_activity_ids: ['1'] });
    await ready();
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'claimed'), dispatch_attempts: 0 }));
    dispatch.setCredits(0);
    await dispatch.run(true);
    expect(executor.tasks).toEqual([expect.objectContaining({ activity_id: '1', attempt: 0, reoffer: true })]);
    expect(state('1')).toMatchObject({ state: 'assigned', dispatch_attempts: 0 });
    // Its Completion names the executor's own attempt: accepted, and that attempt is persisted.
    await onExecutor({
      type: 'completion',
      activity_id: '1',
      attempt: 3,
      result: { ok: true, output_refs: {}, metadata_json: '{}' },
      assigned_here: false,
    });
    expect(state('1')).toMatchObject({ state: 'completing', dispatch_attempts: 3 });
  });

  test('a poison task: every loss counts as a dispatch; past max_dispatch_attempts it is failed with the reason', async () => {
    const { store, executor, onExecutor, ready, down, state, dispatch, finished } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'claimed')));
    await ready();
    for (let i = 1; i <= 3; i++) {
      dispatch.forget('1');
      dispatch.setCredits(1);
      await dispatch.run(true);
      await down(); // the executor crashed running it
      await onExecutor({ type: 'resync', running_activity_ids: [], lost_activity_ids: ['1'], held_activity_ids: [] });
      await ready();
    }
    expect(executor.tasks.map((t) => t.attempt)).toEqual([1, 2, 3]);
    expect(state('1')).toMatchObject({ state: 'failing' });
    expect(state('1')?.fail_reason).toStartWith('EXECUTOR_LOST');
    expect(finished).toEqual(['1:failing']);
  });

  test('a lost task with no dispatch left goes straight to failing: it is never claimable on the way', async () => {
    const { store, onExecutor, state, finished } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 3 }));
    // Every state the record is committed in: the dispatch loop runs between any two of them.
    const seen: string[] = [];
    const transact = store.transact.bind(store);
    store.transact = (async (fn: Parameters<typeof store.transact>[0]) => {
      const out = await transact(fn);
      seen.push(String(state('1')?.state));
      return out;
    }) as typeof store.transact;
    await onExecutor({ type: 'resync', running_activity_ids: [], lost_activity_ids: ['1'], held_activity_ids: [] });
    expect(seen).not.toContain('claimed');
    expect(state('1')).toMatchObject({ state: 'failing' });
    expect(finished).toEqual(['1:failing']);
  });
});
