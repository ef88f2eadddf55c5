import { describe, expect, test } from 'bun:test';
import type { RpcClient } from '../chain/transport.ts';
import { createLogger } from '../internal/logger.ts';
import type { Store } from '../store/store.ts';
import { type BroadcastCtx, createBroadcaster } from './broadcaster.ts';

/**
 * A fake RPC (the fee read's concurrency is the point, and a real node answers too fast to show it): every request
 * is recorded and held until `release()`.
 */
function fakeRpc() {
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const held: Array<() => void> = [];
  const answers: Record<string, unknown> = {
    eth_feeHistory: { baseFeePerGas: ['0x1', '0x7'] },
    eth_maxPriorityFeePerGas: '0x3',
  };
  const rpc = {
    request: (method: string) => {
      calls.push(method);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise((resolve) =>
        held.push(() => {
          inFlight--;
          resolve(answers[method]);
        }),
      );
    },
  } as unknown as RpcClient;
  return {
    rpc,
    calls,
    maxInFlight: () => maxInFlight,
    release: () => {
      for (const r of held.splice(0)) r();
    },
  };
}

describe('broadcaster fee read', () => {
  test('both fee reads go out together, and callers during a read share it', async () => {
    const fake = fakeRpc();
    let now = 0;
    const ctx = {
      store: {} as Store,
      rpc: fake.rpc,
      policy: { feeCacheMs: 1000 },
      log: createLogger('test', { level: 'error' }),
      now: () => now,
    } as unknown as BroadcastCtx;
    const b = createBroadcaster(ctx);
    const first = b.suggestFees();
    const second = b.suggestFees();
    await Promise.resolve();
    expect(fake.maxInFlight()).toBe(2);
    fake.release();
    expect(await first).toEqual({ baseFee: 7n, priorityFee: 3n });
    expect(await second).toEqual({ baseFee: 7n, priorityFee: 3n });
    expect(fake.calls).toEqual(['eth_feeHistory', 'eth_maxPriorityFeePerGas']);
    // Cached for feeCacheMs, then read again.
    await b.suggestFees();
    expect(fake.calls.length).toBe(2);
    now = 1000;
    const third = b.suggestFees();
    await Promise.resolve();
    fake.release();
    await third;
    expect(fake.calls.length).toBe(4);
  });
});
