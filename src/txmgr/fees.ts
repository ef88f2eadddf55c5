/**
 * EIP-1559 fee math, pure. Invariants:
 * - maxPriorityFeePerGas ≤ maxFeePerGas ≤ the slot's cap (min of `maxFeePerGasWei` and `feeCapMultiplier` × the
 *   first maxFee suggested for the slot).
 * - A bump raises BOTH fees by max(gasBumpPercent, 10)% + 1 wei (geth and most nodes refuse a same-nonce
 *   replacement that does not raise both by 10%), and never below what the market asks now. If the cap does not
 *   leave room for a valid replacement the result is `at_cap`: keep the current tx and keep re-sending it.
 */
import type { TxPolicy } from './types.ts';

export interface Fees {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** What the node suggests now: the next block's base fee and a priority fee. */
export interface FeeSuggestion {
  baseFee: bigint;
  priorityFee: bigint;
}

type FeePolicy = Pick<TxPolicy, 'gasBumpPercent' | 'feeCapMultiplier' | 'maxFeePerGasWei' | 'minPriorityFeeWei'>;

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/** x × (100 + pct)/100, rounded up, + 1 wei. */
export function raiseBy(x: bigint, pct: number): bigint {
  const p = BigInt(Math.ceil(pct * 100));
  return (x * (10_000n + p) + 9_999n) / 10_000n + 1n;
}

/** The smallest fee a node accepts as replacement for `prev` (10% + 1 wei). */
export function minReplacement(prev: bigint): bigint {
  return raiseBy(prev, 10);
}

/** First fees for a slot, and the slot's cap for all later bumps. */
export function initialFees(s: FeeSuggestion, p: FeePolicy): { fees: Fees; capWei: bigint } {
  let prio = max(s.priorityFee, p.minPriorityFeeWei);
  const suggested = 2n * s.baseFee + prio;
  const mult = BigInt(Math.round(p.feeCapMultiplier * 100));
  const capWei = max(min(p.maxFeePerGasWei, (suggested * mult) / 100n), 1n);
  const maxFee = min(suggested, p.maxFeePerGasWei);
  prio = min(prio, maxFee);
  return { fees: { maxFeePerGas: maxFee, maxPriorityFeePerGas: prio }, capWei };
}

export type BumpResult = { kind: 'bumped'; fees: Fees } | { kind: 'at_cap'; fees: Fees };

/**
 * Replacement fees for `prev`. `market` (optional) lifts them to what a fresh tx would pay now; `extraPercent`
 * adds to the bump after a "replacement transaction underpriced" answer.
 */
export function bumpFees(
  prev: Fees,
  p: FeePolicy,
  capWei: bigint,
  market?: FeeSuggestion,
  extraPercent = 0,
): BumpResult {
  const pct = Math.max(p.gasBumpPercent, 10) + extraPercent;
  let prio = raiseBy(prev.maxPriorityFeePerGas, pct);
  let maxFee = raiseBy(prev.maxFeePerGas, pct);
  if (market) {
    prio = max(prio, max(market.priorityFee, p.minPriorityFeeWei));
    maxFee = max(maxFee, 2n * market.baseFee + prio);
  }
  maxFee = min(maxFee, capWei);
  prio = min(prio, maxFee);
  if (maxFee < minReplacement(prev.maxFeePerGas) || prio < minReplacement(prev.maxPriorityFeePerGas)) {
    return { kind: 'at_cap', fees: prev };
  }
  return { kind: 'bumped', fees: { maxFeePerGas: maxFee, maxPriorityFeePerGas: prio } };
}

/** estimateGas × (1 + margin/100), rounded up. */
export function gasWithMargin(estimate: bigint, marginPercent: number): bigint {
  const m = BigInt(Math.ceil(marginPercent * 100));
  return (estimate * (10_000n + m) + 9_999n) / 10_000n;
}
