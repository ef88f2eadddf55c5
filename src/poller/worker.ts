/**
 * The Poller's worker-thread body: builds its own transport (nothing is shared with the main thread but the
 * port) and, with `wsUrl`, its own new-head subscription (each head starts a poll round), and runs the poller
 * until told to stop.
 */
import type { MessagePort } from 'node:worker_threads';
import { createHeadSubscription } from '../chain/heads.ts';
import { createRpcTransport } from '../chain/transport.ts';
import { createLogger } from '../internal/logger.ts';
import type { PollerCommand, PollerEvent, PollerOptions } from './messages.ts';
import { createPoller } from './poller.ts';

/** How often the new-head feed's state is reported to the supervisor. */
export const HEADS_REPORT_MS = 2_000;

export async function runPollerWorker({ port, options }: { port: MessagePort; options: PollerOptions }): Promise<void> {
  const logger = createLogger('poller', { level: options.logLevel });
  const rpc = createRpcTransport(options.rpc, { logger: logger.child('rpc') });
  const emit = (ev: PollerEvent) => port.postMessage(ev);
  const poller = createPoller({
    rpc,
    addresses: options.addresses,
    queueName: options.queueName,
    pollBatch: options.pollBatch,
    pollIntervalMs: options.pollIntervalMs,
    logger,
    emit,
  });
  const heads = options.wsUrl
    ? createHeadSubscription({
        url: options.wsUrl,
        timeoutMs: options.wsTimeoutMs,
        logger: logger.child('heads'),
        onHead: () => poller.newHead(),
      })
    : undefined;
  const report = heads ? setInterval(() => emit({ type: 'heads', ...heads.status() }), HEADS_REPORT_MS) : undefined;
  report?.unref?.();
  await new Promise<void>((resolve) => {
    port.on('message', (msg: PollerCommand) => {
      // Only `stop` is acted on: discovery is never paused (claims are bounded by the lifecycle, not here).
      if (msg.type === 'stop') {
        clearInterval(report);
        heads?.stop();
        void poller.stop().then(resolve);
      }
    });
    poller.start();
    heads?.start();
  });
  emit({ type: 'stopped' });
  port.close();
}
