/**
 * The poller's options, compiled once from the validated config (the schema holds every default), and its
 * constants that are not configuration.
 */
import { rpcTransportOptions } from '../chain/options.ts';
import type { WcpConfig } from '../config/load.ts';
import type { PollerOptions } from './messages.ts';

/** Longest wait between polls while the RPC keeps failing. */
export const POLL_BACKOFF_MAX_MS = 30_000;

/** The poller thread's options from the config (plain data: they cross into the worker thread). */
export function pollerOptions(config: WcpConfig): PollerOptions {
  return {
    rpc: rpcTransportOptions(config),
    addresses: {
      subnetControlPlane: config.ethereum.subnetControlPlane,
      taskQueue: config.ethereum.taskQueue,
      workflowEngine: config.ethereum.workflowEngine,
      multicall3: config.ethereum.multicall3,
    },
    queueName: config.scheduler.queueName,
    pollBatch: config.scheduler.pollBatch,
    pollIntervalMs: config.scheduler.pollIntervalMs,
    wsUrl: config.ethereum.wsUrl,
    wsTimeoutMs: config.ethereum.requestTimeoutMs,
    logLevel: config.log.level,
  };
}
