/**
 * The tx manager's options, compiled once from the validated config (the schema holds every default), and its
 * constants that are not configuration.
 */
import type { WcpConfig } from '../config/load.ts';
import type { TxPolicy } from './types.ts';

/** Re-send the signed bytes of a pending tx this often (a node may have dropped it from its pool). */
export const REBROADCAST_MS = 6_000;
/** While the wallet cannot pay, the blocked tx is retried this often. */
export const INSUFFICIENT_FUNDS_RETRY_MS = 15_000;
/** Final lane records kept, in nonces behind the newest (bounds the start-up scan). */
export const LANE_HISTORY = 1_000;
/** A node's fee suggestion is reused this long by consecutive submits. */
export const FEE_CACHE_MS = 1_000;

const GWEI = 1e9;

/** The policy from `tx_policy` and `ethereum.confirmations`. */
export function txPolicy(config: WcpConfig): TxPolicy {
  const p = config.txPolicy;
  return Object.freeze({
    gasBumpPercent: p.gasBumpPercent,
    bumpAfterMs: p.bumpAfterMs,
    bumpAfterBlocks: p.bumpAfterBlocks,
    rebroadcastMs: REBROADCAST_MS,
    maxInFlight: p.maxInFlight,
    // 0 in the config means "act on the receipt": a receipt's own block is its first confirmation.
    confirmations: Math.max(1, config.ethereum.confirmations),
    feeCapMultiplier: p.feeCapMultiplier,
    maxFeePerGasWei: BigInt(Math.round(p.maxFeePerGasGwei * GWEI)),
    minPriorityFeeWei: BigInt(Math.round(p.minPriorityFeeGwei * GWEI)),
    gasLimitMarginPercent: p.gasLimitMarginPercent,
    nonceTooLowAbortAfter: p.nonceTooLowAbortAfter,
    refusedAbortAfter: p.refusedAbortAfter,
    receiptPollMs: p.receiptPollMs,
    insufficientFundsRetryMs: INSUFFICIENT_FUNDS_RETRY_MS,
    laneHistory: LANE_HISTORY,
    feeCacheMs: FEE_CACHE_MS,
  });
}
