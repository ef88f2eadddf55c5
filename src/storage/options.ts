/**
 * The storage broker's options, compiled once at start in the supervisor thread (where the wallet key is); the
 * executor thread builds its broker from them with `thread.ts` (apart, so this thread never loads grpc-js).
 * Compiling makes the session: an ephemeral key and the wallet's delegation to it, valid `subnet_api.session_ttl`
 * (renewed by restarting wcp), so the wallet key never reaches the executor thread. TLS files are read here too,
 * so a bad path stops the start.
 */
import type { RpcTransportOptions } from '../chain/transport.ts';
import { rpcTransportOptions } from '../chain/options.ts';
import type { WcpConfig } from '../config/load.ts';
import { createStorageSession, type StorageSession } from './auth.ts';
import { readTlsMaterial, type TlsMaterial } from '../internal/tls-files.ts';

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
