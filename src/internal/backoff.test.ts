import { describe, expect, test } from 'bun:test';
import { backoffCeilingMs, backoffDelayMs } from './backoff.ts';

describe('backoff', () => {
  test('doubles from the base and stops at the cap', () => {
    const p = { baseMs: 100, maxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 50].map((a) => backoffCeilingMs(p, a))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });
  test('full jitter stays within [0, ceiling]; no jitter gives the ceiling', () => {
    const p = { baseMs: 100, maxMs: 1_000 };
    expect(backoffDelayMs(p, 3, () => 0.999)).toBeLessThanOrEqual(400);
    expect(backoffDelayMs(p, 3, () => 0)).toBe(0);
    expect(backoffDelayMs({ ...p, jitter: false }, 3)).toBe(400);
  });
});
