import { afterEach, describe, expect, test } from 'bun:test';
import { inflightKey } from '../store/keys.ts';
import { type Inflight, InflightSchema } from '../store/records.ts';
import { createChainClock } from './clock.ts';
import { expireRound, isExpired } from './expiry.ts';
import type { Decision } from './effects.ts';
import { cleanupTestContexts, fakeChain, testContext } from './testing/fakes.ts';
import { held, NOW_S } from './testing/fixtures.ts';

afterEach(cleanupTestContexts);

describe('chain clock', () => {
  test('unknown until a block is read; then the block time moving with the wall clock; reads at most once a second', async () => {
    const rpc = fakeChain();
    let wallMs = 5_000_000;
    const clock = createChainClock({ rpc, now: () => wallMs });
    expect(clock.known()).toBe(false);
    await clock.refresh();
    expect(clock.known()).toBe(true);
    expect(clock.nowS()).toBe(NOW_S);
    wallMs += 500;
    rpc.head = { number: 101, timestamp: NOW_S + 12 };
    await clock.refresh(); // within the refresh period: not read
    expect(clock.nowS()).toBe(NOW_S + 0.5);
    expect(rpc.calls.length).toBe(1);
    wallMs += 500;
    await clock.refresh();
    expect(clock.nowS()).toBe(NOW_S + 12); // a new block: skew taken again
    expect(clock.skewS()).toBe(NOW_S + 12 - wallMs / 1000);
  });
});

describe('chain clock skew', () => {
  test('a block seen late does not set the clock back: the soonest-seen of the recent blocks wins', async () => {
    const rpc = fakeChain();
    let wallMs = 1_000_000;
    const clock = createChainClock({ rpc, now: () => wallMs });
    rpc.head = { number: 100, timestamp: 1_000 }; // seen the moment it was made
    await clock.refresh();
    expect(clock.nowS()).toBe(1_000);
    wallMs += 1_900; // the next block (made at 1 001) is seen 0.9 s late
    rpc.head = { number: 101, timestamp: 1_001 };
    await clock.refresh();
    expect(clock.nowS()).toBeCloseTo(1_001.9, 5);
  });
});

describe('local expiry', () => {
  test('past the lifetime always; past the heartbeat timeout only with no heartbeat in flight', () => {
    const r = held('1', 'running', NOW_S - 601);
    expect(isExpired(r, NOW_S, { pending: false })).toBe(true);
    expect(isExpired(r, NOW_S, { pending: true })).toBe(false);
    expect(isExpired(held('1', 'running'), NOW_S + 3601, { pending: true })).toBe(true);
    expect(isExpired(held('1', 'running'), NOW_S, { pending: false })).toBe(false);
  });

  test('a mined heartbeat counts before its confirmation: liveness does not wait for confirmation depth', () => {
    const r = held('1', 'running', NOW_S - 601); // last confirmed heartbeat: past the 600 s timeout
    expect(isExpired(r, NOW_S, { pending: false, minedS: NOW_S - 20 })).toBe(false);
    expect(isExpired(r, NOW_S, { pending: false, minedS: NOW_S - 601 })).toBe(true);
  });

  test('a record whose complete is in flight is left to that tx, however long its confirmations take', async () => {
    const { ctx, store, tracker } = testContext();
    const ended: string[] = [];
    const decide = async (id: string, decider: (r: Inflight | undefined) => Decision) => {
      if (decider(store.get(inflightKey(id), InflightSchema)).writes.some((w) => w.kind === 'end')) ended.push(id);
    };
    // Last confirmed heartbeat 601 s ago (timeout 600 s); its complete was mined and awaits its confirmations.
    await store.transact((tx) => tx.put(inflightKey('1'), held('1', 'completing', NOW_S - 601)));
    tracker.begin('complete', ['1']).sent(4);
    await expireRound(ctx, decide);
    expect(ended).toEqual([]);
    tracker.release('complete', ['1'], 4); // it failed: nothing else keeps the activity
    await expireRound(ctx, decide);
    expect(ended).toEqual(['1']);
  });
});
