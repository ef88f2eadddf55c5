/**
 * The daemon's single Piscina worker file. Each task is a long-lived component that owns the MessagePort it was
 * given and resolves when told to stop; `kind` says which.
 *
 * Each component is imported when its task arrives, not at the top: every pool thread evaluates this file at start,
 * and one thread runs one component, so the poller's and the reconciler's threads never evaluate grpc-js, the
 * protos or the storage broker, and the executor's thread never evaluates the reconciler. In the bundle a dynamic
 * import of our own module is a lazy initialiser, so this is evaluation saved, per thread, at every start.
 */
import type { ExecutorTaskOptions, WorkerTask } from './messages.ts';

export default async function workerEntry(task: WorkerTask): Promise<void> {
  switch (task.kind) {
    case 'poller': {
      const { runPollerWorker } = await import('../poller/worker.ts');
      return await runPollerWorker(task);
    }
    case 'reconciler': {
      const [{ runReconcilerWorker }, { createLogger }] = await Promise.all([
        import('../reconciler/worker.ts'),
        import('../internal/logger.ts'),
      ]);
      return await runReconcilerWorker(
        { port: task.port, options: task.options },
        { logger: createLogger('reconciler', { level: task.logLevel }) },
      );
    }
    case 'executor': {
      const [{ runExecutorWorker }, { createLogger }, { createThreadStorageBroker }] = await Promise.all([
        import('../executor/worker.ts'),
        import('../internal/logger.ts'),
        import('../storage/thread.ts'),
      ]);
      const o: ExecutorTaskOptions = task.options;
      const logger = createLogger('executor', { level: o.logLevel });
      const broker = o.storage ? createThreadStorageBroker(o.storage, logger.child('storage')) : undefined;
      try {
        return await runExecutorWorker({ port: task.port, options: o.bridge, logger, ...(broker ? { broker } : {}) });
      } finally {
        broker?.close();
      }
    }
    default:
      throw new Error(`unknown worker task kind: ${String((task as { kind: unknown }).kind)}`);
  }
}
