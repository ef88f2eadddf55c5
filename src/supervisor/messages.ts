/**
 * Typed messages between the supervisor (main thread) and its Piscina worker threads, defined once for both
 * directions. Each worker task is long-lived: it receives a MessagePort in its task object and runs until told to
 * stop. Errors cross as `WireError` (`{ code, message, retryable }`) and are rebuilt by code.
 *
 * The executor bridge's and the reconciler's messages live beside their components
 * (`src/executor/messages.ts`, `src/reconciler/messages.ts`); this file holds the poller's and the task union.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from '../internal/errors.ts';
import type { ExecutorWorkerOptions } from '../executor/worker.ts';
import type { ReconcilerOptions } from '../reconciler/messages.ts';
import type { ClaimJob } from '../store/records.ts';

export interface PollerOptions {
  rpcUrls: string[];
  chainId: number;
  addresses: { subnetControlPlane: string; taskQueue: string; workflowEngine: string; multicall3: string };
  requestTimeoutMs: number;
  queueName: string;
  pollBatch: number;
  pollIntervalMs: number;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
}

/** Poller → supervisor. */
export type PollerEvent =
  | { type: 'claimJobs'; jobs: ClaimJob[]; polled_at_ms: number; rpc_ms: number }
  | { type: 'pollError'; error: WireError; consecutive: number }
  | { type: 'stopped' };

/** Supervisor → poller. `pause`/`resume` carry backpressure: a full backlog pauses discovery, not memory. */
export type PollerCommand = { type: 'pause' } | { type: 'resume' } | { type: 'pollNow' } | { type: 'stop' };

/** The executor worker's options: the bridge's, plus where the storage broker is (built in the thread). */
export interface ExecutorTaskOptions {
  bridge: ExecutorWorkerOptions;
  storage?: { endpoint: string; workerAddress: string; timeoutMs: number };
  logLevel: 'error' | 'warn' | 'info' | 'debug';
}

/** The task objects handed to `pool.run()`; `worker-entry.ts` dispatches on `kind`. */
export type WorkerTask =
  | { kind: 'poller'; port: MessagePort; options: PollerOptions }
  | { kind: 'executor'; port: MessagePort; options: ExecutorTaskOptions }
  | { kind: 'reconciler'; port: MessagePort; options: ReconcilerOptions; logLevel: 'error' | 'warn' | 'info' | 'debug' };
