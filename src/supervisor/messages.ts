/**
 * Typed messages between the supervisor (main thread) and its Piscina worker threads, defined once for both
 * directions. Each worker task is long-lived: it receives a MessagePort in its task object and runs until told to
 * stop. Errors cross as `WireError` (`{ code, message, retryable }`) and are told apart by code.
 *
 * Each worker component's messages live beside it (`src/poller/messages.ts`, `src/executor/messages.ts`,
 * `src/reconciler/messages.ts`: `XCommand` supervisor → worker, `XEvent` worker → supervisor); this file holds
 * the task union handed to the pool.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ExecutorWorkerOptions } from '../executor/worker.ts';
import type { PollerOptions } from '../poller/messages.ts';
import type { ReconcilerOptions } from '../reconciler/messages.ts';
import type { StorageThreadOptions } from '../storage/options.ts';
import type { ThreadStatsTask } from '../internal/thread-stats.ts';

/** The executor worker's options: the bridge's, plus where the storage broker is (built in the thread). */
export interface ExecutorTaskOptions {
  bridge: ExecutorWorkerOptions;
  /** The storage broker's: endpoint, TLS, chain reads, and the session key with the wallet's delegation. */
  storage?: StorageThreadOptions;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
}

/**
 * The task objects handed to `pool.run()`; `worker-entry.ts` dispatches on `kind`. `secrets` is the supervisor's
 * redaction registry when the task was sent (a thread's registry is its own), registered before the task runs.
 * `stats`, on the first task of each thread: where the thread reports its heap and event-loop lag
 * (`src/internal/thread-stats.ts`) while the task runs.
 */
export type WorkerTask = { secrets: string[]; stats?: ThreadStatsTask } & (
  | { kind: 'poller'; port: MessagePort; options: PollerOptions }
  | { kind: 'executor'; port: MessagePort; options: ExecutorTaskOptions }
  | {
      kind: 'reconciler';
      port: MessagePort;
      options: ReconcilerOptions;
      logLevel: 'error' | 'warn' | 'info' | 'debug';
    }
);

/**
 * The `workerData` of a pool thread: the components it will run, whose code it starts loading as soon as it boots
 * (while the supervisor still runs its start-up checks), before their tasks arrive; and the supervisor's
 * redaction registry, registered before anything in the thread can log.
 */
export interface WorkerBootData {
  preload: ReadonlyArray<WorkerTask['kind']>;
  secrets: string[];
}
