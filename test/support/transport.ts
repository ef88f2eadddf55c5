/**
 * The RPC transport the in-process tests use against one node: the daemon's transport with short timeouts and
 * backoffs (`o` overrides them), logging to `logger` when given.
 */
import { createRpcTransport, type RpcClient } from '../../src/chain/transport.ts';
import type { Logger } from '../../src/internal/logger.ts';

export function testTransport(
  url: string,
  o: { chainId?: number; timeoutMs?: number; endpointBackoffMaxMs?: number } = {},
  logger?: Logger,
): RpcClient {
  return createRpcTransport(
    {
      urls: [url],
      chainId: o.chainId ?? 31337,
      timeoutMs: o.timeoutMs ?? 2_000,
      maxLagBlocks: 5,
      endpointBackoffMs: 100,
      endpointBackoffMaxMs: o.endpointBackoffMaxMs ?? 1_000,
    },
    logger ? { logger } : {},
  );
}
