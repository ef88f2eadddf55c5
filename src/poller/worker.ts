/**
 * The Poller's worker-thread body: builds its own chain reader (nothing is shared with the main thread but the
 * port) and maps port commands to the poller. Resolves when told to stop.
 */
import type { MessagePort } from 'node:worker_threads';
import { createChainReader } from '../chain/reader.ts';
import { createLogger } from '../internal/logger.ts';
import type { PollerCommand, PollerEvent, PollerOptions } from '../supervisor/messages.ts';
import { createPoller } from './poller.ts';

export async function runPollerWorker({ port, options }: { port: MessagePort; options: PollerOptions }): Promise<void> {
  const logger = createLogger('poller', { level: options.logLevel });
  const reader = createChainReader({
    rpcUrls: options.rpcUrls,
    chainId: options.chainId,
    addresses: options.addresses,
    timeoutMs: options.requestTimeoutMs,
  });
  const emit = (ev: PollerEvent) => port.postMessage(ev);
  const poller = createPoller({ reader, queueName: options.queueName, pollBatch: options.pollBatch, pollIntervalMs: options.pollIntervalMs, logger, emit });
  await new Promise<void>((resolve) => {
    port.on('message', (msg: PollerCommand) => {
      switch (msg.type) {
        case 'pause':
          poller.pause();
          break;
        case 'resume':
          poller.resume();
          break;
        case 'pollNow':
          poller.pollNow();
          break;
        case 'stop':
          void poller.stop().then(resolve);
          break;
      }
    });
    poller.start();
  });
  reader.destroy();
  emit({ type: 'stopped' });
  port.close();
}
