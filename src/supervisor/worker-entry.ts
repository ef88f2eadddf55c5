/**
 * The daemon's single Piscina worker file. Each task is a long-lived component that owns the MessagePort it was
 * given and resolves when told to stop; `kind` says which.
 *
 * A thread loads only the components it runs: every pool thread evaluates this file at boot, so the discovery
 * thread never evaluates grpc-js, the protos or the storage broker, and the executor's thread never evaluates the
 * reconciler. In the bundle a dynamic import of our own module is a lazy initialiser, so this is evaluation saved
 * per thread. The components named in `workerData.preload` start loading at boot, while the supervisor still runs
 * its start-up checks, so a task dispatched after them finds its code ready. The supervisor's secrets
 * (`workerData.secrets`, and each task's `secrets`) are registered with this thread's redactor before anything runs.
 */
import { workerData } from 'node:worker_threads';
import { registerSecrets } from '../internal/redact.ts';
import { startThreadProfile } from '../runtime/thread-profile.ts';
import { startThreadReporter } from '../internal/thread-stats.ts';
import type { ExecutorTaskOptions, WorkerBootData, WorkerTask } from './messages.ts';

// The redaction registry is per thread: the supervisor's secrets are registered before any component can log.
registerSecrets((workerData as Partial<WorkerBootData> | null)?.secrets);

/** `f`, called at most once: the first call's promise is every call's. */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= f();
    return p;
  };
}

const LOADERS = {
  poller: once(() => import('../poller/worker.ts')),
  reconciler: once(() => Promise.all([import('../reconciler/worker.ts'), import('../internal/logger.ts')])),
  executor: once(async () => {
    const loaded = await Promise.all([
      import('../executor/worker.ts'),
      import('../internal/logger.ts'),
      import('../storage/thread.ts'),
      import('../taskstream/protocol.ts'),
    ]);
    // The link's and the broker's one-time setup (proto parsing, curve tables) is done here, not after the dial.
    loaded[3].loadExecutorService();
    loaded[2].warmUpStorageBroker();
    return loaded;
  }),
} as const;

// A failed preload is reported by the task that awaits the same promise; here it must not be an unhandled rejection.
for (const kind of (workerData as Partial<WorkerBootData> | null)?.preload ?? [])
  void LOADERS[kind]?.().catch(() => {});

export default async function workerEntry(task: WorkerTask): Promise<void> {
  registerSecrets(task.secrets);
  const writeProfile = await startThreadProfile(task.kind);
  const stopReporting = task.stats ? startThreadReporter(task.stats) : undefined;
  try {
    return await runTask(task);
  } finally {
    stopReporting?.();
    await writeProfile();
  }
}

async function runTask(task: WorkerTask): Promise<void> {
  switch (task.kind) {
    case 'poller': {
      const { runPollerWorker } = await LOADERS.poller();
      return await runPollerWorker(task);
    }
    case 'reconciler': {
      const [{ runReconcilerWorker }, { createLogger }] = await LOADERS.reconciler();
      return await runReconcilerWorker(
        { port: task.port, options: task.options },
        { logger: createLogger('reconciler', { level: task.logLevel }) },
      );
    }
    case 'executor': {
      const [{ runExecutorWorker }, { createLogger }, { createThreadStorageBroker }] = await LOADERS.executor();
      const o: ExecutorTaskOptions = task.options;
      const logger = createLogger('executor', { level: o.logLevel });
      const broker = o.storage ? createThreadStorageBroker(o.storage, logger.child('storage')) : undefined;
      try {
        return await runExecutorWorker({
          port: task.port,
          options: o.bridge,
          logger,
          batchPort: true,
          ...(broker ? { broker } : {}),
        });
      } finally {
        broker?.close();
      }
    }
    default:
      throw new Error(`unknown worker task kind: ${String((task as { kind: unknown }).kind)}`);
  }
}
