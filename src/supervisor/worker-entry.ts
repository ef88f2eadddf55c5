/**
 * The daemon's single Piscina worker file. Each task is a long-lived component that owns the MessagePort it was
 * given and resolves when told to stop; `kind` says which.
 */
import { runExecutorWorker } from '../executor/worker.ts';
import { createLogger } from '../internal/logger.ts';
import { runPollerWorker } from '../poller/worker.ts';
import { runReconcilerWorker } from '../reconciler/worker.ts';
import { createThreadStorageBroker } from '../storage/options.ts';
import type { ExecutorTaskOptions, WorkerTask } from './messages.ts';

export default async function workerEntry(task: WorkerTask): Promise<void> {
  switch (task.kind) {
    case 'poller':
      return await runPollerWorker(task);
    case 'reconciler':
      return await runReconcilerWorker(
        { port: task.port, options: task.options },
        { logger: createLogger('reconciler', { level: task.logLevel }) },
      );
    case 'executor': {
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
