/**
 * The reconciler's options, compiled once from the validated config (the schema holds every default), and its
 * constants that are not configuration.
 */
import { rpcTransportOptions } from '../chain/options.ts';
import type { WcpConfig } from '../config/load.ts';
import type { LogFetcherOptions } from './logs.ts';
import type { ReconcilerOptions } from './messages.ts';

/** Blocks of hashes the follower remembers to find a fork; also the overlap of incremental log fetches. */
export const REORG_DEPTH = 128;
/** First wait after an RPC failure of a scan or follow step. */
export const BACKOFF_MIN_MS = 500;
/** eth_getLogs: successes in a row before the range grows again. */
export const LOGS_GROW_AFTER = 3;
/** eth_getLogs: transport retries of one range before the step fails (and the worker backs off). */
export const LOGS_MAX_RETRIES = 2;
/** eth_getLogs: bounds of the wait between those retries. */
export const LOGS_RETRY_MIN_MS = 250;
export const LOGS_RETRY_MAX_MS = 2_000;

/** What the supervisor knows from its store when it starts the reconciler. */
export interface ReconcilerLocalState {
  checkpoint?: { block_number: number; block_hash?: string };
  localIds: string[];
}

/** The reconciler thread's options from the config and the store's checkpoint and local ids. */
export function reconcilerOptions(config: WcpConfig, local: ReconcilerLocalState): ReconcilerOptions {
  return {
    rpc: rpcTransportOptions(config),
    taskQueue: config.ethereum.taskQueue,
    workflowEngine: config.ethereum.workflowEngine,
    multicall3: config.ethereum.multicall3,
    wallet: config.ethereum.walletAddress,
    queueName: config.scheduler.queueName,
    windowS: Math.floor(config.reconciler.windowMs / 1000),
    followIntervalMs: config.reconciler.followIntervalMs,
    periodMs: config.reconciler.periodMs,
    initialChunkBlocks: config.reconciler.initialChunkBlocks,
    maxChunkBlocks: config.reconciler.maxChunkBlocks,
    localIds: local.localIds,
    ...(local.checkpoint ? { checkpoint: local.checkpoint } : {}),
    followMaxBlocks: config.reconciler.maxChunkBlocks,
    filterClaimable: true,
    includeHeartbeats: true,
    reorgDepth: REORG_DEPTH,
    backoffMinMs: BACKOFF_MIN_MS,
    backoffMaxMs: config.reconciler.backoffMaxMs,
  };
}

/** The adaptive eth_getLogs fetcher's options for a reconciler (retries never wait longer than its own backoff). */
export function logFetcherOptions(o: ReconcilerOptions): Omit<LogFetcherOptions, 'rpc'> {
  return {
    initialChunkBlocks: o.initialChunkBlocks,
    maxChunkBlocks: o.maxChunkBlocks,
    growAfter: LOGS_GROW_AFTER,
    maxRetries: LOGS_MAX_RETRIES,
    retryBackoff: {
      baseMs: Math.min(o.backoffMinMs, LOGS_RETRY_MIN_MS),
      maxMs: Math.min(o.backoffMaxMs, LOGS_RETRY_MAX_MS),
    },
  };
}
