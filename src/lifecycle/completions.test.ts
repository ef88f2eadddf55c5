import { afterEach, describe, expect, test } from 'bun:test';
import { doneKey, inflightKey } from '../store/keys.ts';
import { InflightSchema } from '../store/records.ts';
import { NOT_HELD_ROUNDS } from './completions.ts';
import { endDecision } from './effects.ts';
import { cleanupTestContexts, testContext, executorSide } from './testing/fakes.ts';
import { held } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

const OK = { ok: true as const, output_refs: { result: 'r' }, metadata_json: '{}' };

function setup(rechecked: (ids: string[]) => Promise<void> = async () => {}) {
  const t = testContext();
  const { link, dispatch, finished, completions, onExecutor, runner } = executorSide(t, { recheck: rechecked });
  /** Runs the acks owed (the manager does after each tx event). */
  const acksDue = () => runner.run(completions.acksDue());
  const state = (id: string) => t.store.get(inflightKey(id), InflightSchema);
  return { ...t, link, dispatch, completions, onExecutor, finished, state, acksDue, runner };
}

describe('completions', () => {
  test('a Completion after Cancel{expired} is refused NOT_HELD (the proto), not taken as a duplicate', async () => {
    const { store, executor, onExecutor, runner, finished } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    await runner.decide(['1'], (rs) => endDecision('1', rs.get('1'), 'expired', 2, {}, 'lifetime passed'));
    expect(executor.cancelled).toEqual(['1']);
    // The executor's run, cancelled, answers; so would one that finished just before the Cancel reached it.
    await onExecutor({
      type: 'completion',
      activity_id: '1',
      attempt: 1,
      result: { ok: false, code: 'CANCELLED', message: 'cancelled: expired', retryable: false },
    });
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: OK });
    expect(executor.acks).toEqual([
      {
        activity_id: '1',
        attempt: 1,
        accepted: false,
        code: 'NOT_HELD',
        reason: 'the activity already ended here (expired)',
      },
      {
        activity_id: '1',
        attempt: 1,
        accepted: false,
        code: 'NOT_HELD',
        reason: 'the activity already ended here (expired)',
      },
    ]);
    expect(finished).toEqual(['1:expired']);
  });

  test('accepted: the outcome is committed and the complete sent; the ack waits until the complete is mined', async () => {
    const { store, executor, onExecutor, acksDue, finished, state } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: OK });
    expect(state('1')?.state).toBe('completing');
    expect(finished).toEqual(['1:completing']);
    // Until the complete is on chain the executor keeps the result (a store wiped now would lose it otherwise).
    expect(executor.acks).toEqual([]);
    await acksDue();
    expect(executor.acks).toEqual([]);
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'resuming') }));
    await acksDue();
    expect(executor.acks).toEqual([{ activity_id: '1', attempt: 1, accepted: true }]);
    await acksDue();
    expect(executor.acks).toHaveLength(1);
  });

  test('a failure outcome is acknowledged once the record leaves failing (also by a repair: the periodic re-check)', async () => {
    const { store, executor, onExecutor, completions } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    const failed = { ok: false as const, code: 'HANDLER_ERROR', message: 'boom', retryable: false };
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: failed });
    expect(executor.acks).toEqual([]);
    await store.transact((tx) => {
      tx.del(inflightKey('1'));
      tx.put(doneKey('1'), { activity_id: '1', outcome: 'failed', finished_at_ms: 1 });
    });
    await completions.recheck();
    expect(executor.acks).toEqual([{ activity_id: '1', attempt: 1, accepted: true }]);
  });

  test('a duplicate sends nothing more and is acknowledged with the first once mined; another attempt is refused as STALE_ATTEMPT', async () => {
    const { store, executor, onExecutor, acksDue, finished, state } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 2 }));
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: OK });
    expect(state('1')?.state).toBe('running');
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 2, result: OK });
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 2, result: OK });
    expect(executor.acks.map((a) => `${a.attempt}:${a.accepted}:${a.code ?? ''}`)).toEqual(['1:false:STALE_ATTEMPT']);
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'resuming'), dispatch_attempts: 2 }));
    await acksDue();
    // A duplicate arriving after the outcome is on chain is acknowledged at once.
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 2, result: OK });
    expect(executor.acks.map((a) => `${a.attempt}:${a.accepted}:${a.code ?? ''}`)).toEqual([
      '1:false:STALE_ATTEMPT',
      '2:true:',
      '2:true:',
    ]);
    expect(finished).toEqual(['1:completing']);
  });

  test('a record with no attempt history (rebuilt from chain) takes the executor attempt; a lost-then-claimed one its own', async () => {
    const { store, onExecutor, state } = setup();
    await store.transact((tx) => {
      tx.put(inflightKey('1'), { ...held('1', 'claimed'), dispatch_attempts: 0 });
      tx.put(inflightKey('2'), { ...held('2', 'claimed'), dispatch_attempts: 2 });
    });
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 5, result: OK });
    await onExecutor({ type: 'completion', activity_id: '2', attempt: 2, result: OK });
    expect(state('1')).toMatchObject({ state: 'completing', dispatch_attempts: 5 });
    expect(state('2')).toMatchObject({ state: 'completing', dispatch_attempts: 2 });
  });

  test('an activity not held yet: kept, applied once the record is back; never held: refused as NOT_HELD', async () => {
    const asked: string[] = [];
    const { store, executor, onExecutor, completions, state } = setup(async (ids) => void asked.push(...ids));
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: OK });
    await onExecutor({ type: 'completion', activity_id: '2', attempt: 1, result: OK });
    expect(executor.acks).toEqual([]);
    expect(completions.pending()).toBe(2);
    // The reconciler rebuilds 1 from chain (claimed, no attempt history).
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'claimed'), dispatch_attempts: 0 }));
    for (let i = 0; i < NOT_HELD_ROUNDS; i++) await completions.recheck();
    expect(state('1')?.state).toBe('completing');
    expect(asked).toEqual(Array(NOT_HELD_ROUNDS).fill('2'));
    // 1 is acknowledged once its complete is mined; 2 is refused.
    expect(executor.acks.map((a) => `${a.activity_id}:${a.accepted}:${a.code ?? ''}`)).toEqual(['2:false:NOT_HELD']);
    expect(completions.pending()).toBe(0);
  });

  test('the re-check applies a remembered completion the record did not take (still heartbeated)', async () => {
    const { store, onExecutor, completions, state } = setup();
    // Still claiming when the Completion came (its claim not confirmed yet): kept, not dropped.
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'claiming'), dispatch_attempts: 0 }));
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: OK });
    expect(state('1')?.state).toBe('claiming');
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    await completions.recheck();
    expect(state('1')?.state).toBe('completing');
  });

  test('refused (bridge OUTPUT_INVALID, or too large a result): re-dispatched while dispatches remain, then failed with the reason', async () => {
    const { store, executor, onExecutor, finished, state } = setup();
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'running')));
    await onExecutor({ type: 'completionRejected', activity_id: '1', attempt: 1, code: 'OUTPUT_INVALID', reason: 'x' });
    expect(state('1')).toMatchObject({ state: 'claimed', dispatch_attempts: 1 });
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 2 }));
    const big = { ok: true as const, output_refs: { result: 'x'.repeat(3000) }, metadata_json: '{}' };
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 2, result: big });
    expect(state('1')?.state).toBe('claimed');
    expect(executor.acks.at(-1)).toMatchObject({ accepted: false, code: 'OUTPUT_TOO_LARGE' });
    await store.transact((tx) => tx.put(inflightKey('1'), { ...held('1', 'running'), dispatch_attempts: 3 }));
    await onExecutor({ type: 'completionRejected', activity_id: '1', attempt: 3, code: 'OUTPUT_INVALID', reason: 'y' });
    expect(state('1')).toMatchObject({ state: 'failing', fail_reason: 'OUTPUT_INVALID: y' });
    expect(finished).toEqual(['1:failing']);
  });

  test('a completion for an activity that already ended here is acknowledged (the executor may forget it)', async () => {
    const { store, executor, onExecutor } = setup();
    await store.transact((tx) => tx.put(doneKey('1'), { activity_id: '1', outcome: 'completed', finished_at_ms: 1 }));
    await onExecutor({ type: 'completion', activity_id: '1', attempt: 1, result: OK });
    expect(executor.acks).toEqual([{ activity_id: '1', attempt: 1, accepted: true }]);
  });
});
