/**
 * The storage broker as the executor thread builds it from the options the supervisor compiled (`options.ts`).
 * Apart from the options so that only the executor thread evaluates the broker's gRPC client and its proto.
 */
import { SigningKey } from 'ethers';
import { createRpcTransport } from '../chain/transport.ts';
import type { Logger } from '../internal/logger.ts';
import { channelCredentialsFor } from '../internal/grpc-tls.ts';
import { createPresignSigner } from './auth.ts';
import { createStorageBroker, type StorageBroker } from './broker.ts';
import { createEntitlementChain } from './entitlement.ts';
import { loadStorageBrokerService } from './wire.ts';
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

/**
 * Does, ahead of time, the one-time work the broker's first use would do on the thread's path to the executor
 * link: parsing storage.proto, and building secp256k1's precomputed tables (the first key or signature of a thread
 * pays ~50 ms for them). Called while the thread waits for its task (the supervisor still runs its start-up checks).
 * The key used is a constant with no funds or role: only the tables it leaves behind matter.
 */
export function warmUpStorageBroker(): void {
  loadStorageBrokerService();
  void new SigningKey(WARM_UP_KEY).publicKey;
}

/** Private key 1: a valid scalar, used only to trigger the curve's table building. */
const WARM_UP_KEY = `0x${'0'.repeat(63)}1`;
