/**
 * The poller's options, compiled once from the validated config (the schema holds every default), and its
 * constants that are not configuration.
 */
import { ENDPOINT_BACKOFF_MAX_MS, ENDPOINT_BACKOFF_MS } from '../chain/options.ts';
import type { RpcTransportOptions } from '../chain/transport.ts';
import type { WcpConfig } from '../config/load.ts';
import type { PollerOptions } from '../supervisor/messages.ts';

/** Longest wait between polls while the RPC keeps failing. */
export const POLL_BACKOFF_MAX_MS = 30_000;

/** The poller thread's options from the config (plain data: they cross into the worker thread). */
export function pollerOptions(config: WcpConfig): PollerOptions {
  return {
    rpcUrls: [...config.ethereum.rpcUrls],
    chainId: config.ethereum.chainId,
    addresses: {
      subnetControlPlane: config.ethereum.subnetControlPlane,
      taskQueue: config.ethereum.taskQueue,
      workflowEngine: config.ethereum.workflowEngine,
      multicall3: config.ethereum.multicall3,
    },
    requestTimeoutMs: config.ethereum.requestTimeoutMs,
    queueName: config.scheduler.queueName,
    pollBatch: config.scheduler.pollBatch,
    pollIntervalMs: config.scheduler.pollIntervalMs,
    logLevel: config.log.level,
  };
}

/**
 * The poller thread's transport options. `PollerOptions` does not carry `tx_policy.max_lag_blocks`; the lag rule
 * needs heads read by `refreshHeads`, which the poller never calls, so it cannot apply here and is left off (0).
 */
export function pollerTransportOptions(o: PollerOptions): RpcTransportOptions {
  return {
    urls: o.rpcUrls,
    chainId: o.chainId,
    timeoutMs: o.requestTimeoutMs,
    maxLagBlocks: 0,
    endpointBackoffMs: ENDPOINT_BACKOFF_MS,
    endpointBackoffMaxMs: ENDPOINT_BACKOFF_MAX_MS,
  };
}
