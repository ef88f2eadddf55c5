/**
 * An executor's loss charged to the right activity, through the lifecycle's executor side (dispatch, the executor
 * messages, completions) over a simulated executor: graceful shutdowns charge nothing; a crash charges a task only
 * when it held that task alone; suspects run alone, so only the task that crashes its executor is failed.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import type { LostCause } from '../executor/messages.ts';
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { cleanupTestContexts, executorSide, testContext } from './testing/fakes.ts';
import { held } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

const OK = { ok: true as const, output_refs: { result: 'blob:1/r' }, metadata_json: '{}' };

function setup(ids: string[]) {
  const t = testContext();
  const side = executorSide(t);
  const state = (id: string) => t.store.get(inflightKey(id), InflightSchema) as Inflight;
  /** What the simulated executor holds: id → the attempt it runs. */
  const holding = new Map<string, number>();
  /** Clears retry delays and dispatches with the executor's free slots (`concurrency` in all). */
  const dispatchRound = async (concurrency: number) => {
    for (const id of ids) if (!holding.has(id)) side.dispatch.forget(id);
    side.dispatch.setCredits(concurrency - holding.size);
    const before = t.executor.tasks.length;
    await side.dispatch.run(true);
    for (const task of t.executor.tasks.slice(before)) holding.set(task.activity_id, task.attempt);
  };
  /** The executor's stream ends (`cause`) and it comes back holding nothing. */
  const restart = async (cause: LostCause) => {
    await side.onExecutor({ type: 'state', state: 'backoff' });
    await side.onExecutor({
      type: 'resync',
      running_activity_ids: [],
      lost_activity_ids: [...holding.keys()],
      held_activity_ids: [],
      lost_cause: cause,
    });
    holding.clear();
    await side.onExecutor({ type: 'state', state: 'ready', activity_types: ['echo'] });
  };
  const completeAll = async () => {
    for (const [id, attempt] of holding)
      await side.onExecutor({ type: 'completion', activity_id: id, attempt, result: OK });
    holding.clear();
  };
  return { ...t, ...side, state, holding, dispatchRound, restart, completeAll };
}

async function claimed(store: ReturnType<typeof testContext>['store'], ids: string[]): Promise<void> {
  await store.transact((tx) => {
    for (const id of ids) tx.put(inflightKey(id), held(id, 'claimed'));
  });
}

describe('executor loss', () => {
  test('three graceful executor restarts, and runs given back as SHUTTING_DOWN, fail nothing', async () => {
    const ids = ['1', '2', '3'];
    const s = setup(ids);
    await claimed(s.store, ids);
    for (let i = 0; i < 3; i++) {
      await s.dispatchRound(3);
      expect([...s.holding.keys()].sort()).toEqual(ids);
      await s.onExecutor({ type: 'progress', activity_id: '1', fraction: 0, message: 'started' });
      await s.restart('graceful');
    }
    // And three more runs given back by an executor on its way down.
    for (let i = 0; i < 3; i++) {
      await s.dispatchRound(3);
      for (const [id, attempt] of s.holding) {
        await s.onExecutor({
          type: 'completion',
          activity_id: id,
          attempt,
          result: { ok: false, code: 'SHUTTING_DOWN', message: 'executor shutting down', retryable: true },
        });
      }
      s.holding.clear();
    }
    for (const id of ids) {
      expect(s.state(id)).toMatchObject({ state: 'claimed', dispatch_attempts: 6, refused_dispatches: 6 });
      expect(s.state(id).isolate).toBeUndefined();
    }
    expect(s.finished).toEqual([]);
    await s.dispatchRound(3);
    await s.completeAll();
    expect(s.finished.sort()).toEqual(['1:completing', '2:completing', '3:completing']);
  });

  // The poison task crashes the executor as soon as it starts; the healthy ones take one round to finish. Either
  // no task had reported Progress when it crashed, or the healthy ones had and the poison one had not.
  for (const healthyProgress of [false, true]) {
    test(`a poison task beside healthy ones: only it is failed (healthy Progress seen: ${healthyProgress})`, async () => {
      const ids = ['1', '2', '3']; // '2' is the poison task
      const s = setup(ids);
      await claimed(s.store, ids);
      /** The tasks on the executor when each round ended, and whether it crashed. */
      const rounds: string[] = [];
      const open = () => ids.some((id) => ['claimed', 'assigned', 'running'].includes(s.state(id).state));
      for (let round = 0; round < 20 && open(); round++) {
        await s.dispatchRound(3);
        const on = [...s.holding.keys()].sort();
        if (s.holding.has('2')) {
          if (healthyProgress)
            for (const id of on)
              if (id !== '2') await s.onExecutor({ type: 'progress', activity_id: id, fraction: 0, message: '' });
          rounds.push(`crash:${on.join(',')}`);
          await s.restart('crash');
        } else {
          rounds.push(`done:${on.join(',')}`);
          await s.completeAll();
        }
      }
      expect(s.state('2')).toMatchObject({ state: 'failing' });
      expect(s.state('2').fail_reason).toBe('EXECUTOR_LOST: the executor crashed while holding only this task');
      expect(s.finished.sort()).toEqual(['1:completing', '2:failing', '3:completing']);
      // The healthy ones were never charged for the poison task's crashes (each lost once, uncounted).
      for (const id of ['1', '3']) expect(s.state(id)).toMatchObject({ dispatch_attempts: 2, refused_dispatches: 1 });
      // The first crash took all three; each suspect then ran alone; the poison task crashed alone three times
      // (max_dispatch_attempts), its first crash not counted.
      expect(rounds[0]).toBe('crash:1,2,3');
      expect(rounds.filter((r) => r === 'crash:2')).toHaveLength(3);
      expect(rounds.filter((r) => r.startsWith('crash:'))).toHaveLength(4);
      expect(s.state('2')).toMatchObject({ dispatch_attempts: 4, refused_dispatches: 1, crash_losses: 4 });
    });
  }

  test('an isolated task waits until the executor holds nothing, stops new work meanwhile, then runs alone', async () => {
    const s = setup(['1', '2', '3']);
    await s.store.transact((tx) => {
      tx.put(inflightKey('1'), held('1', 'running'));
      tx.put(inflightKey('2'), { ...held('2', 'claimed'), isolate: true });
      tx.put(inflightKey('3'), held('3', 'claimed'));
    });
    s.holding.set('1', 1);
    await s.dispatchRound(4);
    expect(s.executor.assigned).toEqual([]); // '2' waits for '1'; '3' waits behind '2'
    await s.completeAll();
    await s.dispatchRound(4);
    expect(s.executor.assigned).toEqual(['2']);
    await s.dispatchRound(4);
    expect(s.executor.assigned).toEqual(['2']); // nothing beside it
    await s.completeAll();
    await s.dispatchRound(4);
    expect(s.executor.assigned).toEqual(['2', '3']);
  });
});
