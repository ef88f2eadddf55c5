import { describe, expect, test } from 'bun:test';
import { createInFlightTracker } from './tracker.ts';

describe('in-flight tracker', () => {
  test('ids are in flight from begin (before a nonce is known) and keep the nonce once sent', () => {
    const t = createInFlightTracker();
    const s = t.begin('complete', ['1']);
    expect(t.has('1')).toBe(true);
    s.sent(5);
    t.release('complete', ['1'], 4); // another tx's outcome: not ours to release
    expect(t.has('1')).toBe(true);
    t.release('complete', ['1'], 5);
    expect(t.has('1')).toBe(false);
  });

  test('an aborted submit gives the ids back to what they had before', () => {
    const t = createInFlightTracker();
    t.restore('claim_batch', ['1'], 3);
    t.begin('complete', ['1', '2']).abort();
    expect(t.has('2')).toBe(false);
    t.release('claim_batch', ['1'], 3); // still the claim's entry, released by the claim's nonce
    expect(t.has('1')).toBe(false);
  });

  test('heartbeats are tracked apart from the other kinds', () => {
    const t = createInFlightTracker();
    t.begin('heartbeat', ['1']).sent(7);
    expect(t.heartbeats.inFlight('1')).toBe(true);
    expect(t.has('1')).toBe(false);
    t.release('complete', ['1'], 7);
    expect(t.heartbeats.inFlight('1')).toBe(true);
    t.release('heartbeat', ['1'], 7);
    expect(t.heartbeats.inFlight('1')).toBe(false);
  });

  test('settle keeps every id in flight until its commit resolves, and releases them if it throws', async () => {
    const t = createInFlightTracker();
    t.begin('claim_batch', ['1', '2']).sent(9);
    let commit!: () => void;
    const done = t.settle(
      { kind: 'claim_batch', nonce: 9, activityIds: ['1', '2'] },
      () => new Promise<void>((r) => (commit = r)),
    );
    await Promise.resolve();
    expect([t.has('1'), t.has('2')]).toEqual([true, true]);
    commit();
    await done;
    expect([t.has('1'), t.has('2')]).toEqual([false, false]);

    t.begin('heartbeat', ['3']).sent(10);
    await expect(
      t.settle({ kind: 'heartbeat', nonce: 10, activityIds: ['3'] }, async () => {
        throw new Error('store write failed');
      }),
    ).rejects.toThrow('store write failed');
    expect(t.heartbeats.inFlight('3')).toBe(false);
  });

  test('settle lets the commit release some ids early, and never releases a newer tx for the same id', async () => {
    const t = createInFlightTracker();
    t.begin('complete', ['1', '2']).sent(1);
    await t.settle({ kind: 'complete', nonce: 1, activityIds: ['1', '2'] }, async (release) => {
      release(['1']);
      expect([t.has('1'), t.has('2')]).toEqual([false, true]);
      t.begin('resume', ['1']).sent(2); // the next step's tx, sent before the settle ends
    });
    expect(t.has('1')).toBe(true);
    expect(t.has('2')).toBe(false);
    expect(t.size()).toBe(1);
  });

  test('the heartbeat lead takes a slow landing at once and decays on fast ones', () => {
    const t = createInFlightTracker();
    const land = (nonce: number, roundS: number, atS: number) => {
      t.begin('heartbeat', ['1']).sent(nonce);
      t.heartbeats.sent(nonce, roundS);
      t.heartbeats.mined(['1'], nonce, atS);
      t.release('heartbeat', ['1'], nonce);
    };
    land(1, 100, 103);
    expect(t.heartbeats.leadS()).toBe(3);
    land(2, 110, 111); // fast: 0.3 × 1 + 0.7 × 3
    expect(t.heartbeats.leadS()).toBeCloseTo(2.4, 5);
    land(3, 120, 124); // slow: taken whole
    expect(t.heartbeats.leadS()).toBe(4);
  });
});
