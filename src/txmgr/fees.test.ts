import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { bumpFees, gasWithMargin, initialFees, minReplacement, raiseBy } from './fees.ts';

const GWEI = 1_000_000_000n;
/** The fee part of a policy, written out (the manager's comes from the config). */
const P = { gasBumpPercent: 20, feeCapMultiplier: 5, maxFeePerGasWei: 500n * GWEI, minPriorityFeeWei: 1_000_000n };

describe('fees', () => {
  test('initial fees: 2 x base + priority, priority floored, cap at 5x the suggestion or the absolute cap', () => {
    const { fees, capWei } = initialFees({ baseFee: 10n * GWEI, priorityFee: 2n * GWEI }, P);
    expect(fees).toEqual({ maxFeePerGas: 22n * GWEI, maxPriorityFeePerGas: 2n * GWEI });
    expect(capWei).toBe(110n * GWEI);
    const low = initialFees({ baseFee: 7n, priorityFee: 0n }, P);
    expect(low.fees.maxPriorityFeePerGas).toBe(P.minPriorityFeeWei);
    const huge = initialFees({ baseFee: 400n * GWEI, priorityFee: 2n * GWEI }, P);
    expect(huge.fees.maxFeePerGas).toBe(500n * GWEI);
    expect(huge.capWei).toBe(500n * GWEI);
  });

  test('a bump raises both fees by the policy percent + 1 wei', () => {
    const r = bumpFees({ maxFeePerGas: 100n * GWEI, maxPriorityFeePerGas: 10n * GWEI }, P, 500n * GWEI);
    expect(r).toEqual({
      kind: 'bumped',
      fees: { maxFeePerGas: 120n * GWEI + 1n, maxPriorityFeePerGas: 12n * GWEI + 1n },
    });
  });

  test('the bump never goes under 10% (node replacement rule) even if the policy says less', () => {
    const p = { ...P, gasBumpPercent: 5 };
    const r = bumpFees({ maxFeePerGas: 1000n, maxPriorityFeePerGas: 100n }, p, 10n ** 18n);
    expect(r.fees.maxFeePerGas).toBe(1101n);
    expect(r.fees.maxPriorityFeePerGas).toBe(111n);
  });

  test('the market lifts the bump (base fee spike)', () => {
    const r = bumpFees({ maxFeePerGas: 3n * GWEI, maxPriorityFeePerGas: GWEI }, P, 100n * GWEI, {
      baseFee: 20n * GWEI,
      priorityFee: GWEI,
    });
    expect(r.kind).toBe('bumped');
    expect(r.fees.maxFeePerGas).toBe(40n * GWEI + (GWEI * 12n) / 10n + 1n);
  });

  test('at the cap: clamped if the cap still allows a valid replacement, otherwise at_cap', () => {
    const prev = { maxFeePerGas: 100n, maxPriorityFeePerGas: 10n };
    expect(bumpFees(prev, P, 115n)).toEqual({
      kind: 'bumped',
      fees: { maxFeePerGas: 115n, maxPriorityFeePerGas: 13n },
    });
    expect(bumpFees(prev, P, 105n)).toEqual({ kind: 'at_cap', fees: prev });
  });

  test('underpriced: extra percent on top', () => {
    const r = bumpFees({ maxFeePerGas: 1000n, maxPriorityFeePerGas: 100n }, P, 10n ** 18n, undefined, 10);
    expect(r.fees.maxFeePerGas).toBe(1301n);
  });

  test('property: a bumped result is always a valid replacement and within the cap', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: 1n, max: 10n ** 13n }),
        fc.integer({ min: 0, max: 100 }),
        (maxFee, prioRaw, cap, pct) => {
          const prev = {
            maxFeePerGas: maxFee,
            // biome-ignore lint/complexity/useMathMinMax: bigints (Math.min takes numbers)
            maxPriorityFeePerGas: prioRaw > maxFee ? maxFee : prioRaw,
          };
          const r = bumpFees(prev, { ...P, gasBumpPercent: pct }, cap);
          if (r.kind === 'at_cap') return r.fees === prev;
          return (
            r.fees.maxFeePerGas <= cap &&
            r.fees.maxPriorityFeePerGas <= r.fees.maxFeePerGas &&
            r.fees.maxFeePerGas >= minReplacement(prev.maxFeePerGas) &&
            r.fees.maxPriorityFeePerGas >= minReplacement(prev.maxPriorityFeePerGas) &&
            r.fees.maxFeePerGas * 100n >= prev.maxFeePerGas * 110n
          );
        },
      ),
    );
  });

  test('helpers round up', () => {
    expect(raiseBy(0n, 20)).toBe(1n);
    expect(minReplacement(10n)).toBe(12n);
    expect(gasWithMargin(21_000n, 20)).toBe(25_200n);
    expect(gasWithMargin(1n, 20)).toBe(2n);
  });
});
