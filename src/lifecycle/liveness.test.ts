import { describe, expect, test } from 'bun:test';
import { livenessBudget, measureBlockTimeS } from './liveness.ts';
import { fakeChain } from './testing/fakes.ts';

describe('liveness budget', () => {
  test('1 s blocks, a 15 s timeout, 15 s configured: the interval is timeout/3 and fits half the timeout', () => {
    const b = livenessBudget({ heartbeatIntervalMs: 15_000, receiptPollMs: 250, heartbeatTimeoutS: 15, blockTimeS: 1 });
    expect([b.intervalS, b.inclusionS, b.limitS, b.ok]).toEqual([5, 1.5, 7.5, true]);
    expect(b.arithmetic).toContain('= 6.5 s ≤ half');
  });

  test('12 s blocks and a 60 s timeout: 15 s fits, 30 s (clamped to 20 s) does not', () => {
    const at = (ms: number) =>
      livenessBudget({ heartbeatIntervalMs: ms, receiptPollMs: 250, heartbeatTimeoutS: 60, blockTimeS: 12 });
    expect(at(15_000).ok).toBe(true);
    const b = at(30_000);
    expect(b.ok).toBe(false);
    expect(b.arithmetic).toContain('heartbeat interval 20 s');
    expect(b.arithmetic).toContain('= 32.5 s > half the contract');
  });

  test('blocks slower than the timeout allows: no interval can work', () => {
    expect(
      livenessBudget({ heartbeatIntervalMs: 100, receiptPollMs: 50, heartbeatTimeoutS: 10, blockTimeS: 12 }).ok,
    ).toBe(false);
  });

  test('the block time is the median gap of the last blocks (a burst of same-second blocks does not skew it)', async () => {
    const rpc = fakeChain(); // block n has timestamp head.timestamp - (head.number - n): 1 s blocks
    expect(await measureBlockTimeS(rpc)).toBe(1);
    rpc.head = { number: 1, timestamp: 5 };
    expect(await measureBlockTimeS(rpc)).toBe(null);
  });
});
