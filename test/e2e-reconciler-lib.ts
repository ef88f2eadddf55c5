/**
 * What the reconciler end-to-end tests (`e2e-reconciler-*.test.ts`) need beyond the shared kit in `support/`: a
 * proxy rule that blinds the Poller, so the only way wcp can learn of new work is ActivityEnqueued ingestion (the
 * path these tests are about).
 */
import { tqIface } from './support/chain.ts';
import type { RpcProxy } from './support/rpc-proxy.ts';

const POLL_SELECTOR = tqIface.getFunction('pollActivity')!.selector.slice(2).toLowerCase();

/**
 * Makes every eth_call that carries a `pollActivity` call (the Poller's Multicall3 batch) fail, so the Poller
 * finds nothing and wcp can learn of new activities only from ActivityEnqueued events.
 */
export function blindPoller(proxy: RpcProxy) {
  return proxy.addRule({
    name: 'blind poller',
    match: (c) =>
      c.method === 'eth_call' &&
      JSON.stringify(c.params ?? [])
        .toLowerCase()
        .includes(POLL_SELECTOR),
    action: { type: 'error', code: -32000, message: 'test proxy: pollActivity disabled' },
  });
}
