/**
 * The typed messages between the supervisor (main thread) and the reconciler worker (a Piscina thread), both
 * directions, over one MessagePort. Plain structured-cloneable objects: no classes, no bigints (ids and big
 * numbers are decimal strings), errors as `{ code, message, retryable }`.
 *
 * Ordering guarantees the supervisor may rely on:
 * - `facts` with reason 'startup' and then `startupScanDone` come before any `facts` of other reasons;
 * - `enqueued` jobs of a block range come before the `checkpoint` that covers that range;
 * - `reorg` comes before the re-ingested `enqueued` jobs from `forkBlock` on;
 * - `stopped` is the last message.
 */
import type { WireError } from '../internal/errors.ts';
import type { ActivityFact } from '../chain/facts.ts';
import type { RpcTransportOptions } from '../chain/transport.ts';
import type { ClaimJob } from '../store/records.ts';

/** Why a scan ran. */
export type ScanReason = 'startup' | 'periodic' | 'manual';

/** Supervisor → reconciler worker. */
export type ReconcilerCommand =
  /** Run a full-window rescan now (reported with reason 'manual'). `ids`: local activity ids to read as well. */
  | { type: 'scanNow'; reason: string; ids?: string[] }
  /** Stop following, answer `stopped`, end the task. */
  | { type: 'stop' };

/** Reconciler worker → supervisor. */
export type ReconcilerEvent =
  /** ActivityEnqueued of our queue (still claimable when read, unless filtering is off). Idempotent writes. */
  | { type: 'enqueued'; jobs: ClaimJob[] }
  /** Chain truth for every activity that concerns this wallet, read at `window.toBlock`. Feed to `planRepair`. */
  | { type: 'facts'; facts: ActivityFact[]; reason: ScanReason; window: { fromBlock: number; toBlock: number } }
  /**
   * Blocks from `forkBlock` on were replaced. Jobs with `source: 'event'` and `block_number >= forkBlock` are
   * suspect (their enqueue may be gone); the follower re-ingests from `forkBlock`, so real ones come again.
   */
  | { type: 'reorg'; forkBlock: number; detail: string }
  /** Every block up to and including `block_number` is ingested: store as `last_scan_block`. */
  | { type: 'checkpoint'; block_number: number; block_hash: string }
  /** The startup scan is reported; the supervisor may start claiming. */
  | { type: 'startupScanDone'; toBlock: number }
  | { type: 'error'; error: WireError }
  | { type: 'stopped' };

/**
 * Everything `runReconcilerWorker` needs; structured-cloneable (it crosses into the worker thread). Built from
 * the config by `reconcilerOptions` (`options.ts`); every field is set, none has a default here.
 */
export interface ReconcilerOptions {
  /** The thread builds its own transport from these. */
  rpc: RpcTransportOptions;
  taskQueue: string;
  workflowEngine: string;
  multicall3: string;
  /** Our worker address (any case). */
  wallet: string;
  queueName: string;
  /** Scan window, seconds of block time back from the head (`reconciler.window`). */
  windowS: number;
  /** Follower poll interval. */
  followIntervalMs: number;
  /** Period of the rescan of the whole window. */
  periodMs: number;
  /** eth_getLogs range to start with (adapted at run time). */
  initialChunkBlocks: number;
  /** Upper bound the adaptive range may grow to. */
  maxChunkBlocks: number;
  /** `last_scan_block` from the store, when there is one. */
  checkpoint?: { block_number: number; block_hash?: string };
  /** Local activity ids (inflight / claim_job keys) to read in the startup scan as well. */
  localIds: string[];
  /** Max blocks the follower ingests per step (it loops until caught up). */
  followMaxBlocks: number;
  /** Emit only enqueued activities still claimable when read (one Multicall3 read per batch). */
  filterClaimable: boolean;
  /** Also use ActivityHeartbeat events to find our activities. */
  includeHeartbeats: boolean;
  /** Reorg history kept by the follower (blocks); also the rewind on a checkpoint hash mismatch. */
  reorgDepth: number;
  /** Backoff bounds while the RPC fails (`backoffMaxMs` is `reconciler.backoff_max`). */
  backoffMinMs: number;
  backoffMaxMs: number;
}
