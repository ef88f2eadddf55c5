/**
 * The worker-thread pool and where its worker file lives. The only module that imports Piscina.
 *
 * Where the worker is:
 * - from source (`bun run`, Deno, Node with TypeScript stripping): the `.ts` file itself, as a `file:` URL
 *   (a bare relative path would resolve against the current directory, not this file);
 * - in the compiled binary: the worker `scripts/build.ts` embedded as an extra entrypoint (`--worker`, by default
 *   `src/supervisor/worker-entry.ts`), at `/$bunfs/root/<its path>.js`. The source URL is then ignored: the binary
 *   holds exactly one pool worker, chosen at build time;
 * - in the Node bundle (`scripts/build-node.ts`): the bundled worker file beside the main module, likewise the only one.
 */
import { Piscina } from 'piscina';
import { bundledWorkerFile, embeddedWorkerEntry, isCompiledBinary } from './env.ts';

/** `src/supervisor/worker-entry.ts`, the daemon's single pool worker, as seen from the source tree. */
export const DEFAULT_WORKER_URL: URL = new URL('../supervisor/worker-entry.ts', import.meta.url);

/**
 * What to pass as Piscina's `filename`. `source` (default: the daemon's worker entry) is used when running from
 * source; inside the binary the embedded worker is returned whatever `source` says.
 */
export function workerFilename(source: URL | string = DEFAULT_WORKER_URL): string {
  if (isCompiledBinary()) {
    const embedded = embeddedWorkerEntry();
    if (embedded === undefined) {
      throw new Error('This binary was built without a pool worker (scripts/build.ts --worker).');
    }
    return embedded;
  }
  const bundled = bundledWorkerFile();
  if (bundled !== undefined) return bundled;
  const url = typeof source === 'string' ? new URL(source) : source;
  if (url.protocol !== 'file:') throw new Error(`Worker source must be a file: URL, got ${url.href}`);
  return url.href;
}

export interface WorkerPoolOptions {
  /** Worker threads, started at once and kept: minThreads = maxThreads = threads. At least 1. */
  threads: number;
  /** Long-lived tasks each thread runs side by side (they share its event loop). Default 1. */
  tasksPerThread?: number;
  /** The worker's source file as a URL (`new URL('./w.ts', import.meta.url)`); default: the daemon's worker. */
  source?: URL | string;
  /** Passed to every worker as `workerData`. Structured-cloneable. */
  workerData?: unknown;
  /** Milliseconds `close()` waits for running tasks before terminating workers; default 10 000. */
  closeTimeoutMs?: number;
  /** Per-thread V8 heap limits. */
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
}

/** The largest timer delay Node/Bun accept (2^31 - 1 ms, ~24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A Piscina pool for long-lived tasks: each task is a component that runs until told to stop (over the
 * MessagePort it receives), so the pool keeps exactly `threads` workers, never times them out, and queues at most
 * `threads × tasksPerThread` tasks (more long-lived tasks than slots would wait forever, so Piscina rejects them).
 *
 * Tasks carry their MessagePort in the task object and list it in `transferList`:
 * `pool.run({ kind: 'poller', port }, { transferList: [port] })`.
 */
export function createWorkerPool(opts: WorkerPoolOptions): Piscina {
  if (!Number.isInteger(opts.threads) || opts.threads < 1) {
    throw new RangeError(`threads must be a positive integer, got ${opts.threads}`);
  }
  const perThread = opts.tasksPerThread ?? 1;
  if (!Number.isInteger(perThread) || perThread < 1) {
    throw new RangeError(`tasksPerThread must be a positive integer, got ${perThread}`);
  }
  return new Piscina({
    filename: workerFilename(opts.source),
    name: 'default', // the worker's default export handles every task
    minThreads: opts.threads,
    maxThreads: opts.threads,
    idleTimeout: MAX_TIMER_MS,
    maxQueue: opts.threads * perThread,
    concurrentTasksPerWorker: perThread,
    // Piscina's default ('sync') parks an idle worker in Atomics.wait, which freezes that thread's event loop
    // between tasks; our workers keep sockets and timers alive, so they must stay on their event loop.
    atomics: 'disabled',
    recordTiming: false,
    closeTimeout: opts.closeTimeoutMs ?? 10_000,
    workerData: opts.workerData,
    ...(opts.resourceLimits === undefined ? {} : { resourceLimits: opts.resourceLimits }),
  });
}

export type { Piscina };
