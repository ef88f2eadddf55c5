/**
 * Types of the transaction manager: the policy (every knob documented with its default and the anchors it was
 * chosen against), what callers submit, what they get back, and the events the manager emits.
 *
 * Anchors: Chainlink TXM bumps gas 20% (at least 5 gwei) after 3 blocks, keeps ≤16 txs in flight and waits 50
 * blocks for finality; Optimism's txmgr bumps ≥10% after a 48 s resubmission timeout, caps fees at 5× the
 * first suggestion and gives up a nonce after 3 "nonce too low" answers.
 */
import type { WireError } from '../internal/errors.ts';
import type { TxKind } from '../store/records.ts';

export interface TxPolicy {
  /** Percent both fees are raised by on each bump; never below 10 (the nodes' replacement minimum). Default 20 (Chainlink). */
  gasBumpPercent: number;
  /** Bump a tx not mined within this many ms. Default 12000 (one mainnet slot; Optimism waits 48 s, Chainlink ~3 blocks). */
  bumpAfterMs: number;
  /**
   * …or after this many new blocks, whichever comes first; 0 disables. Default 0 (time only): on chains with
   * sub-second blocks a block rule alone would bump every second and burn money. Set 3 on ~12 s-block L1s to
   * match Chainlink.
   */
  bumpAfterBlocks: number;
  /** Re-send the current signed bytes of every pending tx this often (a node may have dropped it). Default 6000. */
  rebroadcastMs: number;
  /** Pending (unconfirmed) lane slots at most; `submit` waits while the lane is full. Default 16 (Chainlink). */
  maxInFlight: number;
  /**
   * Blocks on top of (and including) the receipt's block before a tx is `confirmed`. Default 1, right for a
   * local/dev chain only: mainnet-like L1s want 12–64 (Chainlink waits 50), L2s want their safe/finalized head.
   */
  confirmations: number;
  /** Fees never exceed this multiple of the first suggestion for the slot. Default 5 (Optimism). */
  feeCapMultiplier: number;
  /** Absolute maxFeePerGas cap in wei. Default 500 gwei. */
  maxFeePerGasWei: bigint;
  /**
   * Floor for the priority fee (tip) in wei. Default 0.001 gwei: enough on L2s, where a 1 gwei tip would
   * dominate the cost; mainnet operators should raise it to ~1 gwei (Chainlink bumps by at least 5 gwei).
   */
  minPriorityFeeWei: bigint;
  /** Gas limit = estimateGas × (1 + this/100). Default 20. */
  gasLimitMarginPercent: number;
  /** Give a nonce up after this many "nonce too low" answers none of our hashes explains. Default 3 (Optimism). */
  nonceTooLowAbortAfter: number;
  /**
   * Give a tx up after this many sends every endpoint refused outright (e.g. "intrinsic gas too low",
   * "exceeds block gas limit") while no node ever accepted it; its nonce is then filled with a noop so the lane
   * moves on. Default 3.
   */
  refusedAbortAfter: number;
  /** How often receipts, heads and bumps are checked. Default 250 ms. */
  receiptPollMs: number;
  /** Per JSON-RPC call timeout. Default 5000 ms. */
  rpcTimeoutMs: number;
  /** An endpoint more than this many blocks behind the best one is not read from. Default 3. */
  maxLagBlocks: number;
  /** Backoff for a failing endpoint: first delay, doubling up to the max. Defaults 500 ms → 30000 ms. */
  endpointBackoffMs: number;
  endpointBackoffMaxMs: number;
  /** While the wallet cannot pay, retry the blocked tx this often. Default 15000 ms. */
  insufficientFundsRetryMs: number;
  /** Lane records of final slots older than this many nonces are deleted (keeps start-up scans short). Default 1000. */
  laneHistory: number;
  /** How long a fee suggestion from the node is reused by consecutive submits. Default 1000 ms. */
  feeCacheMs: number;
}

export const DEFAULT_TX_POLICY: Readonly<TxPolicy> = Object.freeze({
  gasBumpPercent: 20,
  bumpAfterMs: 12_000,
  bumpAfterBlocks: 0,
  rebroadcastMs: 6_000,
  maxInFlight: 16,
  confirmations: 1,
  feeCapMultiplier: 5,
  maxFeePerGasWei: 500_000_000_000n,
  minPriorityFeeWei: 1_000_000n,
  gasLimitMarginPercent: 20,
  nonceTooLowAbortAfter: 3,
  refusedAbortAfter: 3,
  receiptPollMs: 250,
  rpcTimeoutMs: 5_000,
  maxLagBlocks: 3,
  endpointBackoffMs: 500,
  endpointBackoffMaxMs: 30_000,
  insufficientFundsRetryMs: 15_000,
  laneHistory: 1_000,
  feeCacheMs: 1_000,
});

/** One transaction to send. `data` is the calldata; value is always 0 (wcp never moves funds). */
export interface TxRequest {
  kind: TxKind;
  /** Activities this tx acts for; each gets a `tx:{id}` record pointing at the lane slot. */
  activityIds: string[];
  to: string;
  data: string;
  /** `eth_call` it first at `pending` from the wallet; a revert returns `{ ok: false }` without using a nonce. */
  simulate?: boolean;
  /** Skip estimateGas and use this limit as is. */
  gasLimit?: bigint;
  /**
   * Never use a limit below this (after the margin). For batch calls whose cost depends on state at mining time:
   * an estimate taken while some ids would be skipped is too low if they are live when the tx is mined.
   */
  minGasLimit?: bigint;
}

/** A decoded revert: a custom error of our ABIs, `Error(string)`, `Panic(uint256)`, or raw data. */
export interface DecodedRevert {
  /** Error name (`NotClaimable`, `Error`, `Panic`) or `unknown`. */
  name: string;
  /** Decoded arguments; bigints as decimal strings so the value is JSON-safe. */
  args: Array<string | number | boolean>;
  /** One line for logs and operators. */
  message: string;
  /** Raw revert data when there was any. */
  data?: string;
}

export type SubmitResult =
  | { ok: true; nonce: number; hash: string; gasLimit: bigint; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { ok: false; stage: 'simulate' | 'estimate' | 'funds'; error: WireError; revert?: DecodedRevert };

export type SimResult = { ok: true; returnData: string } | { ok: false; error: WireError; revert?: DecodedRevert };

export interface TxLog {
  address: string;
  topics: string[];
  data: string;
  logIndex: number;
}

interface SlotRef {
  kind: TxKind;
  nonce: number;
  activityIds: string[];
}

/** Everything the manager tells its owner. The lifecycle listens for `confirmed` and `failed`. */
export type TxEvent =
  | ({ type: 'submitted'; hash: string } & SlotRef)
  | ({ type: 'replaced'; oldHash: string; newHash: string; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } & SlotRef)
  | ({ type: 'mined'; hash: string; blockNumber: number; blockHash: string } & SlotRef)
  /** A receipt we had seen vanished (reorg); the slot is pending again and its tx is re-sent. */
  | ({ type: 'reorged'; hash: string; blockNumber: number } & SlotRef)
  | ({
      type: 'confirmed';
      hash: string;
      blockNumber: number;
      blockHash: string;
      status: 'success' | 'reverted';
      gasUsed: bigint;
      revert?: DecodedRevert;
      logs: TxLog[];
    } & SlotRef)
  | ({ type: 'failed'; error: WireError } & SlotRef)
  /** The wallet cannot pay for `nonce`; new submits are refused until a retry goes through. */
  | { type: 'insufficientFunds'; nonce: number; address: string; message: string }
  | { type: 'fundsRestored'; nonce: number; address: string };

export type TxManagerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface EndpointHealth {
  url: string;
  up: boolean;
  consecutiveFailures: number;
  latencyMs: number;
  lastBlock: number;
  chainIdOk: boolean | undefined;
}

export interface TxManagerStatus {
  state: TxManagerState;
  address: string;
  nextNonce: number;
  inFlight: number;
  fundsBlocked: boolean;
  headBlock: number;
  endpoints: EndpointHealth[];
}

/** Resolves a partial policy onto the defaults; floors the bump at 10% and clamps nonsense. */
export function resolvePolicy(p: Partial<TxPolicy> = {}): TxPolicy {
  const out: TxPolicy = { ...DEFAULT_TX_POLICY };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  out.gasBumpPercent = Math.max(10, out.gasBumpPercent);
  out.maxInFlight = Math.max(1, Math.floor(out.maxInFlight));
  out.confirmations = Math.max(1, Math.floor(out.confirmations));
  out.feeCapMultiplier = Math.max(1, out.feeCapMultiplier);
  out.nonceTooLowAbortAfter = Math.max(1, out.nonceTooLowAbortAfter);
  out.refusedAbortAfter = Math.max(1, out.refusedAbortAfter);
  return Object.freeze(out);
}
