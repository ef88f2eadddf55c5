/**
 * The storage broker's options, compiled once at start in the supervisor thread (where the wallet key is), and
 * the factory the executor thread builds its broker with. Compiling makes the session: an ephemeral key and the
 * wallet's delegation to it, valid `subnet_api.session_ttl` (renewed by restarting wcp), so the wallet key never
 * reaches the executor thread. TLS files are read here too, so a bad path stops the start.
 */
import type { RpcTransportOptions } from '../chain/transport.ts';
import { createRpcTransport } from '../chain/transport.ts';
import { rpcTransportOptions } from '../chain/options.ts';
import type { WcpConfig } from '../config/load.ts';
import type { Logger } from '../internal/logger.ts';
import { createPresignSigner, createStorageSession, type StorageSession } from './auth.ts';
import { createStorageBroker, type StorageBroker } from './broker.ts';
import { createEntitlementChain } from './entitlement.ts';
import { channelCredentialsFor, readTlsMaterial, type TlsMaterial } from '../internal/grpc-tls.ts';

/** What the executor thread needs to build its storage broker; plain data (it crosses threads). */
export interface StorageThreadOptions {
  /** gRPC target of the subnet-api. */
  endpoint: string;
  timeoutMs: number;
  chainId: number;
  /** The session key and the wallet's signed delegation to it. The session key is a credential: never log it. */
  session: StorageSession;
  /** The chain reads of the confinement checks: a transport of the thread's own, and the contracts. */
  rpc: RpcTransportOptions;
  taskQueue: string;
  workflowEngine: string;
  /** Set when the link uses TLS (`subnet_api.tls_ca_file`). */
  tls?: TlsMaterial;
}

/** The broker's options from the config; makes the session (signs its delegation) and reads the TLS files. */
export function storageOptions(config: WcpConfig): StorageThreadOptions {
  const tls = readTlsMaterial(
    {
      caFile: config.subnetApi.tlsCaFile,
      certFile: config.subnetApi.tlsCertFile,
      keyFile: config.subnetApi.tlsKeyFile,
    },
    'subnet_api',
  );
  return {
    endpoint: config.subnetApi.grpcEndpoint,
    timeoutMs: config.subnetApi.requestTimeoutMs,
    chainId: config.ethereum.chainId,
    session: createStorageSession({
      walletKey: config.ethereum.privateKey.reveal(),
      chainId: config.ethereum.chainId,
      ttlMs: config.subnetApi.sessionTtlMs,
    }),
    rpc: rpcTransportOptions(config),
    taskQueue: config.ethereum.taskQueue,
    workflowEngine: config.ethereum.workflowEngine,
    ...(tls ? { tls } : {}),
  };
}

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
