/**
 * What the lifecycle's steps share: the seams (store, tx sender, chain, executor, clock) and the in-flight tracker.
 * Each step takes only the parts it uses (`Pick<LifecycleContext, …>`), so a test builds just those.
 */
import type { RpcTransport } from '../chain/transport.ts';
import type { ExecutorCommand, TaskSpec } from '../executor/messages.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import type { Store } from '../store/store.ts';
import type { SimResult, SubmitResult, TxRequest } from '../txmgr/types.ts';
import type { ChainClock } from './clock.ts';
import type { LifecycleOptions } from './options.ts';
import type { InFlightTracker } from './tracker.ts';

/** What the lifecycle needs of the transaction manager. */
export interface TxSender {
  submit(req: TxRequest): Promise<SubmitResult>;
  simulate(req: TxRequest): Promise<SimResult>;
  /**
   * Simulates several calls in one round trip, each in the state the ones before it leave (the batch executor's
   * `simulate`, when the wallet batches); results in order.
   */
  simulateMany?(reqs: readonly TxRequest[]): Promise<SimResult[]>;
  inFlight(): number;
}

/** What the lifecycle needs of the executor side (the gRPC bridge in a worker thread, or the test no-op). */
export interface ExecutorLink {
  assign(task: TaskSpec): void;
  cancel(activityId: string, reason: string): void;
  /** The verdict on a Completion, sent once its outcome is committed (accepted) or refused. */
  ackCompletion(ack: Omit<Extract<ExecutorCommand, { type: 'ackCompletion' }>, 'type'>): void;
  drain(): void;
}

/** The shared parts; one per manager. */
export interface LifecycleContext {
  opts: LifecycleOptions;
  store: Store;
  txm: TxSender;
  /** Chain reads at the latest block or a given one. */
  rpc: RpcTransport;
  executor: ExecutorLink;
  log: Logger;
  metrics: Metrics;
  /** Wall clock, ms. */
  now: () => number;
  clock: ChainClock;
  tracker: InFlightTracker;
}
