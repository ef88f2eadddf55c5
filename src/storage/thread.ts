/**
 * The storage broker as the executor thread builds it from the options the supervisor compiled (`options.ts`).
 * Apart from the options so that only the executor thread evaluates the broker's gRPC client and its proto.
 */
import { createRpcTransport } from '../chain/transport.ts';
import type { Logger } from '../internal/logger.ts';
import { channelCredentialsFor } from '../internal/grpc-tls.ts';
import { createPresignSigner } from './auth.ts';
import { createStorageBroker, type StorageBroker } from './broker.ts';
import { createEntitlementChain } from './entitlement.ts';
import type { StorageThreadOptions } from './options.ts';

/** Builds the broker in the executor thread, with its own chain transport (nothing is shared with the supervisor). */
export function createThreadStorageBroker(o: StorageThreadOptions, logger: Logger): StorageBroker {
  const rpc = createRpcTransport(o.rpc, { logger: logger.child('rpc') });
  return createStorageBroker({
    endpoint: o.endpoint,
    timeoutMs: o.timeoutMs,
    chainId: o.chainId,
    signer: createPresignSigner(o.session),
    chain: createEntitlementChain(rpc, o),
    channelCredentials: channelCredentialsFor(o.tls),
    logger,
  });
}
