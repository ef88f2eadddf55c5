/**
 * The lifecycle's options, compiled once from the validated config, and its internal timing constants.
 * The config schema (`src/config/schema.ts`) is the one source of defaults: nothing here has a default of its own.
 */
import type { BatchMode } from '../chain/batch-executor.ts';
import type { WcpConfig } from '../config/load.ts';
import type { Inflight } from '../store/records.ts';

/** Every config value the activity lifecycle reads; units are in the names. */
export interface LifecycleOptions {
  /** Our worker address, lower-cased (chain facts and event workers are compared lower-cased). */
  wallet: string;
  taskQueue: string;
  workflowEngine: string;
  multicall3: string;
  /** The queue this worker serves (repairs rebuild records into it). */
  queueName: string;
  /** `observe` never claims. */
  mode: 'claim' | 'observe';
  /** Activities held at once (inflight records), claims stop at this count. */
  maxInflight: number;
  /** Ids per claim transaction. */
  claimBatch: number;
  /** Heartbeat period; an activity's own heartbeat timeout / 3 wins when shorter. */
  heartbeatIntervalMs: number;
  /** The nonce lane's capacity (`tx_policy.max_in_flight`); claims leave `CLAIM_RESERVED_SLOTS` of it free. */
  laneMaxInFlight: number;
  /** Dispatches of one activity before a retryable executor failure becomes final. */
  maxDispatchAttempts: number;
  /** Re-offer tasks an executor lost on restart (else fail them). */
  reofferLostTasks: boolean;
  /** `done:` records finished longer ago than this are deleted. */
  doneRetentionMs: number;
  /**
   * Whether lifecycle calls are batched (EIP-7702, through the wallet's delegation to the pinned executor) or sent
   * one transaction per call. From the config only `tx_policy.batch = "off"` is known; with "auto" the supervisor
   * decides at start, after the lane's re-sync and before claims (`src/supervisor/batch-mode.ts`), and replaces this.
   */
  batch: BatchMode;
}

/** `batch` before the supervisor's start-up decision. */
export function configuredBatch(config: WcpConfig): BatchMode {
  return config.txPolicy.batch === 'off'
    ? { mode: 'per-call', reason: 'tx_policy.batch = "off"' }
    : { mode: 'per-call', reason: 'not decided yet (decided at start)' };
}

/** The lifecycle's options from the validated config (a straight copy: the schema holds every default). */
export function lifecycleOptions(config: WcpConfig): LifecycleOptions {
  return {
    wallet: config.ethereum.walletAddress.toLowerCase(),
    taskQueue: config.ethereum.taskQueue,
    workflowEngine: config.ethereum.workflowEngine,
    multicall3: config.ethereum.multicall3,
    queueName: config.scheduler.queueName,
    mode: config.scheduler.mode,
    maxInflight: config.scheduler.maxInflight,
    claimBatch: config.scheduler.claimBatch,
    heartbeatIntervalMs: config.scheduler.heartbeatIntervalMs,
    laneMaxInFlight: config.txPolicy.maxInFlight,
    maxDispatchAttempts: config.executor.maxDispatchAttempts,
    reofferLostTasks: config.executor.reofferLostTasks,
    doneRetentionMs: config.store.doneRetentionMs,
    batch: configuredBatch(config),
  };
}

// Internal timing, not configuration.

/** The lifecycle loop's period when nothing wakes it sooner. */
export const TICK_MS = 250;
/** How often records whose transaction is no longer in flight are re-checked against the chain. */
export const RECHECK_INTERVAL_MS = 15_000;
/** The chain clock reads the latest header at most this often. */
export const CLOCK_REFRESH_MS = 1_000;
/** Lane slots claims leave free, so heartbeats and finishing transactions always find room (the config refuses a lane too small for more). */
export { CLAIM_RESERVED_SLOTS } from '../config/load.ts';
/**
 * Claim calls (of `scheduler.claim_batch` ids each) one claim round may send when the wallet batches: they leave in
 * one transaction, so a round claims up to this many times claim_batch of what can run now.
 */
export const CLAIM_CALLS_PER_BATCHED_ROUND = 4;
/** Ids per heartbeat transaction. */
export const HEARTBEAT_BATCH_IDS = 200;
/** Claims pause this long after the chain says this wallet is not an active worker. */
export const INACTIVE_WORKER_PAUSE_MS = 30_000;
/** A dispatch refused or failed retryably waits this long per attempt before it is offered again. */
export const DISPATCH_RETRY_DELAY_MS = 1_000;
/** How often `done:` records past their retention are deleted. */
export const DONE_PRUNE_INTERVAL_MS = 10 * 60_000;
/** The first deletion of `done:` records this long after start (not on the way to the first claim). */
export const DONE_PRUNE_FIRST_MS = 60_000;
/** Most `done:` records deleted per store transaction. */
export const DONE_PRUNE_BATCH = 1_000;
/** How often `drain` re-checks for busy activities when no tick wakes it. */
export const DRAIN_POLL_MS = 200;

/**
 * How long a record sent back to `claimed` (a retryable failure, a refused Completion, a lost task) waits before its
 * next dispatch: `DISPATCH_RETRY_DELAY_MS` per attempt so far, never longer than one heartbeat interval.
 */
export function retryDelayMs(opts: Pick<LifecycleOptions, 'heartbeatIntervalMs'>, r: Inflight): number {
  return Math.min(DISPATCH_RETRY_DELAY_MS * Math.max(1, r.dispatch_attempts ?? 1), opts.heartbeatIntervalMs);
}
