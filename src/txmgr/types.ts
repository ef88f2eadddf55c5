/**
 * Types of the transaction manager: the policy, what callers submit, what they get back, and the events the
 * manager emits.
 */
import type { EndpointStatus } from '../chain/transport.ts';
import type { WireError } from '../internal/errors.ts';
import type { BatchCall, LaneTx, TxKind } from '../store/records.ts';

/**
 * How the manager sends, bumps and confirms; built by `txPolicy` (`options.ts`) from `tx_policy` and
 * `ethereum.confirmations` of the config (the schema holds the defaults) plus the named constants there.
 */
export interface TxPolicy {
  /** Percent both fees are raised by on each bump; never below 10 (the nodes' replacement minimum). */
  gasBumpPercent: number;
  /** Bump a tx not mined within this many ms. */
  bumpAfterMs: number;
  /**
   * …or after this many new blocks, whichever comes first; 0 disables (on chains with sub-second blocks a block
   * rule alone would bump every second and burn money).
   */
  bumpAfterBlocks: number;
  /** Re-send the current signed bytes of every pending tx this often (a node may have dropped it). */
  rebroadcastMs: number;
  /** Pending (unconfirmed) lane slots at most; `submit` waits while the lane is full. */
  maxInFlight: number;
  /** Blocks on top of (and including) the receipt's block before a tx is `confirmed`; at least 1. */
  confirmations: number;
  /** Fees never exceed this multiple of the first suggestion for the slot. */
  feeCapMultiplier: number;
  /** Absolute maxFeePerGas cap in wei. */
  maxFeePerGasWei: bigint;
  /** Floor for the priority fee (tip) in wei. */
  minPriorityFeeWei: bigint;
  /** Gas limit = estimateGas × (1 + this/100). */
  gasLimitMarginPercent: number;
  /** Give a nonce up after this many "nonce too low" answers none of our hashes explains. */
  nonceTooLowAbortAfter: number;
  /**
   * Give a tx up after this many sends every endpoint refused outright (e.g. "intrinsic gas too low") while no
   * node ever accepted it; its nonce is then filled with a noop so the lane moves on.
   */
  refusedAbortAfter: number;
  /** How often receipts, heads and bumps are checked. */
  receiptPollMs: number;
  /** While the wallet cannot pay, retry the blocked tx this often. */
  insufficientFundsRetryMs: number;
  /** Lane records of final slots older than this many nonces are deleted (keeps start-up scans short). */
  laneHistory: number;
  /** How long a fee suggestion from the node is reused by consecutive submits. */
  feeCacheMs: number;
}

/** One transaction to send. `data` is the calldata; value is always 0 (wcp never moves funds). */
export interface TxRequest {
  kind: TxKind;
  /** Activities this tx acts for; each gets a `tx:{id}` record pointing at the lane slot. */
  activityIds: string[];
  to: string;
  data: string;
  /** A `batch`: its calls in calldata order (persisted with the lane record; events carry them). */
  calls?: BatchCall[];
  /**
   * Estimate gas on this calldata instead of `data` (same target). A batch in try mode never reverts, so a node's
   * estimate of it would find the least gas at which its calls fail silently (out of gas inside); its default-mode
   * twin reverts when any call fails, so its estimate covers every call. Should that estimate revert (a call began
   * to fail since its simulation), `data` is estimated and `minGasLimit` keeps the floor.
   */
  estimateData?: string;
  /** `eth_call` it first at `pending` from the wallet; a revert returns `{ ok: false }` without using a nonce. */
  simulate?: boolean;
  /** Skip estimateGas and use this limit as is. */
  gasLimit?: bigint;
  /**
   * Never use a limit below this (after the margin). For batch calls whose cost depends on state at mining time:
   * an estimate taken while some ids would be skipped is too low if they are live when the tx is mined.
   */
  minGasLimit?: bigint;
  /**
   * A liveness tx (heartbeats): it takes its turn for a nonce before every normal submit waiting, and waits at most
   * `PRIORITY_ESTIMATE_WAIT_MS` for its gas estimate, then uses `minGasLimit` (which it should carry).
   */
  priority?: boolean;
  /**
   * Asked in its turn, just before a nonce is reserved: false withdraws the submit (`stage: 'withdrawn'`, no nonce
   * used). For txs whose reason may vanish while they wait (a heartbeat of an activity that ended meanwhile).
   */
  stillWanted?: () => boolean;
  /**
   * Called with the nonce as soon as it is reserved (before the first broadcast), so the caller knows the tx holds
   * its place in the lane before `submit` resolves (a heartbeat decided meanwhile must not follow a complete).
   */
  onNonce?: (nonce: number) => void;
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
  | { ok: false; stage: 'simulate' | 'estimate' | 'funds' | 'withdrawn'; error: WireError; revert?: DecodedRevert };

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
  /** A `batch` slot's calls (see `LaneTx.calls`). */
  calls?: BatchCall[];
}

/** What every event of a lane slot says of it. */
export function slotRef(rec: LaneTx): SlotRef {
  return {
    kind: rec.kind,
    nonce: rec.nonce,
    activityIds: rec.activity_ids,
    ...(rec.calls ? { calls: rec.calls } : {}),
  };
}

/** Everything the manager tells its owner. The lifecycle listens for `mined`, `reorged`, `confirmed` and `failed`. */
export type TxEvent =
  | ({ type: 'submitted'; hash: string } & SlotRef)
  | ({
      type: 'replaced';
      oldHash: string;
      newHash: string;
      maxFeePerGas: bigint;
      maxPriorityFeePerGas: bigint;
    } & SlotRef)
  /**
   * Included in a block, not yet confirmed: the receipt's status and logs as mined. Liveness may act on it (pace
   * heartbeats, start work on a claim); what is recorded as final waits for `confirmed`. May be followed by
   * `reorged` (the tx is pending again) and a later `mined`.
   */
  | ({
      type: 'mined';
      hash: string;
      blockNumber: number;
      blockHash: string;
      status: 'success' | 'reverted';
      logs: TxLog[];
    } & SlotRef)
  /** A receipt we had seen vanished (reorg); the slot is pending again and its tx is re-sent. */
  | ({ type: 'reorged'; hash: string; blockNumber: number } & SlotRef)
  | ({
      type: 'confirmed';
      hash: string;
      blockNumber: number;
      blockHash: string;
      status: 'success' | 'reverted';
      gasUsed: bigint;
      /** Wei per gas actually paid, when the node's receipt says. */
      effectiveGasPrice?: bigint;
      revert?: DecodedRevert;
      logs: TxLog[];
    } & SlotRef)
  | ({ type: 'failed'; error: WireError } & SlotRef)
  /** The wallet cannot pay for `nonce`; new submits are refused until a retry goes through. */
  | { type: 'insufficientFunds'; nonce: number; address: string; message: string }
  | { type: 'fundsRestored'; nonce: number; address: string }
  /**
   * A transaction from our wallet that this wcp did not send used `nonce` (the key is used by another process or
   * host): the lane skips it; the owner pauses claims and says so loudly.
   */
  | { type: 'foreignTx'; nonce: number; address: string; detail: string }
  /** After a foreign transaction: the lane has moved past every nonce the chain used; its next nonce is ours again. */
  | { type: 'laneResynced'; address: string; nextNonce: number };

export type TxManagerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** `TxManager.status()`: the lane and the endpoints it sends through. */
export interface TxManagerStatus {
  state: TxManagerState;
  address: string;
  nextNonce: number;
  inFlight: number;
  fundsBlocked: boolean;
  headBlock: number;
  endpoints: EndpointStatus[];
}
