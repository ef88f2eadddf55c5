/**
 * The poller thread's messages and options, both directions over one MessagePort: plain structured-cloneable
 * objects, errors as `WireError` (`{ code, message, retryable }`).
 */
import type { RpcTransportOptions } from '../chain/transport.ts';
import type { WireError } from '../internal/errors.ts';
import type { ClaimJob } from '../store/records.ts';

/** Everything the poller thread needs (it builds its own transport from `rpc`). */
export interface PollerOptions {
  rpc: RpcTransportOptions;
  addresses: { subnetControlPlane: string; taskQueue: string; workflowEngine: string; multicall3: string };
  queueName: string;
  pollBatch: number;
  pollIntervalMs: number;
  /** WebSocket endpoint whose new heads start a poll round at once ('' = poll on the interval only). */
  wsUrl: string;
  /** Connect + subscribe timeout of `wsUrl`. */
  wsTimeoutMs: number;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
}

/** Poller → supervisor. */
export type PollerEvent =
  | { type: 'claimJobs'; jobs: ClaimJob[]; polled_at_ms: number; rpc_ms: number }
  | { type: 'pollError'; error: WireError; consecutive: number }
  /** The new-head feed of `wsUrl` (every `HEADS_REPORT_MS` while it runs), for the operator's page. */
  | { type: 'heads'; state: string; heads: number; failures: number; last_head: number }
  | { type: 'stopped' };

/** Supervisor → poller. Discovery is never paused: what is claimed is bounded by the lifecycle, not here. */
export type PollerCommand = { type: 'stop' };
