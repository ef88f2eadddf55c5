/**
 * The executor worker's task body (a long-lived Piscina task): builds the bridge, turns supervisor messages from
 * `port` into bridge calls and bridge events into `port.postMessage`, and resolves once stopped (on a `stop`
 * message or when the port closes). The broker and logger are built by the caller (worker-entry), since they are
 * not cloneable and the storage client lives in its own module.
 */
import type { MessagePort } from 'node:worker_threads';
import { errorText } from '../internal/errors.ts';
import { type Logger, createLogger } from '../internal/logger.ts';
import { batchedPoster, unbatch } from '../internal/port-batch.ts';
import { type ExecutorBridgeOptions, type StorageBrokerLike, createExecutorBridge } from './bridge.ts';
import { type ExecutorEvent, isExecutorCommand } from './messages.ts';

/** The cloneable part of the bridge options (what the supervisor passes to the worker). */
export type ExecutorWorkerOptions = Omit<ExecutorBridgeOptions, 'broker' | 'logger' | 'emit' | 'random'>;

export interface RunExecutorWorkerParams {
  port: MessagePort;
  options: ExecutorWorkerOptions;
  broker?: StorageBrokerLike;
  logger?: Logger;
  /**
   * Events posted in one turn go as one batch message (`port-batch.ts`; the supervisor's side unbatches). Off: one
   * message per event. Commands are unbatched either way.
   */
  batchPort?: boolean;
}

export async function runExecutorWorker({
  port,
  options,
  broker,
  logger,
  batchPort = false,
}: RunExecutorWorkerParams): Promise<void> {
  const log = logger ?? createLogger('executor');
  let portOpen = true;
  const postFailed = (msg: ExecutorEvent, e: unknown) =>
    log.error('Could not post to the supervisor.', { type: msg.type, error: errorText(e) });
  const batched = batchPort
    ? batchedPoster<ExecutorEvent>((m) => {
        if (portOpen) port.postMessage(m);
      }, postFailed)
    : undefined;
  const post = (msg: ExecutorEvent): void => {
    if (!portOpen) return;
    if (batched) return batched.post(msg);
    try {
      port.postMessage(msg);
    } catch (e) {
      postFailed(msg, e);
    }
  };
  const bridge = createExecutorBridge({
    ...options,
    ...(broker !== undefined ? { broker } : {}),
    logger: log,
    emit: post,
  });

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await bridge.stop();
    } catch (e) {
      log.error('Executor bridge stop failed.', { error: errorText(e) });
    }
    try {
      broker?.close();
    } catch {
      /* best effort */
    }
    batched?.flush();
    portOpen = false;
    port.off('message', onPortMessage);
    port.close();
    resolveDone();
  };

  function onPortMessage(m: unknown): void {
    unbatch(m, onCommand);
  }

  function onCommand(m: unknown): void {
    if (!isExecutorCommand(m)) {
      log.error('Ignored a malformed supervisor message.', { type: (m as { type?: unknown })?.type });
      return;
    }
    switch (m.type) {
      case 'assign':
        bridge
          .assign(m.task)
          .catch((e: unknown) => log.error('assign failed.', { activity_id: m.task.activity_id, error: errorText(e) }));
        return;
      case 'cancel':
        bridge.cancel(m.activity_id, m.reason);
        return;
      case 'ackCompletion':
        bridge.ackCompletion({
          activity_id: m.activity_id,
          attempt: m.attempt,
          accepted: m.accepted,
          ...(m.code !== undefined ? { code: m.code } : {}),
          ...(m.reason !== undefined ? { reason: m.reason } : {}),
        });
        return;
      case 'drain':
        bridge.drain();
        return;
      case 'stop':
        void stop();
        return;
    }
  }

  port.on('message', onPortMessage);
  port.on('close', () => {
    portOpen = false;
    void stop();
  });
  port.start();
  bridge.start();
  await done;
}
