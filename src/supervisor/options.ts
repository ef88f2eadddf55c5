/**
 * Options compiled once (Temporal's `compileWorkerOptions` is the model): the validated config — whose schema is
 * the one source of every default — is turned, in this one step, into each component's typed options. The
 * builders live beside their components (`<component>/options.ts`); components never read the config themselves
 * and keep no defaults of their own.
 */
import { rpcTransportOptions } from '../chain/options.ts';
import type { RpcTransportOptions } from '../chain/transport.ts';
import type { WcpConfig } from '../config/load.ts';
import { readTlsMaterial } from '../internal/tls-files.ts';
import { type LifecycleOptions, lifecycleOptions } from '../lifecycle/options.ts';
import type { PollerOptions } from '../poller/messages.ts';
import { pollerOptions } from '../poller/options.ts';
import type { ReconcilerOptions } from '../reconciler/messages.ts';
import { type ReconcilerLocalState, reconcilerOptions } from '../reconciler/options.ts';
import { buildVersion } from '../runtime/env.ts';
import { storageOptions } from '../storage/options.ts';
import { txPolicy } from '../txmgr/options.ts';
import type { TxPolicy } from '../txmgr/types.ts';
import type { ExecutorTaskOptions } from './messages.ts';

export interface CompiledOptions {
  rpc: RpcTransportOptions;
  txPolicy: TxPolicy;
  lifecycle: LifecycleOptions;
  poller: PollerOptions;
  executor: ExecutorTaskOptions;
  /** The reconciler's options also carry what the store knows at start (checkpoint, local ids). */
  reconciler: (local: ReconcilerLocalState) => ReconcilerOptions;
}

/**
 * The executor thread's options: the bridge's (its TLS files are read here, so a bad path stops the start), and
 * the storage broker's (its session is made here, see storage/options.ts).
 */
function executorTaskOptions(config: WcpConfig): ExecutorTaskOptions {
  const ex = config.executor;
  const tls = readTlsMaterial({ caFile: ex.tlsCaFile, certFile: ex.tlsCertFile, keyFile: ex.tlsKeyFile }, 'executor');
  return {
    bridge: {
      endpoint: config.executor.endpoint,
      maxInflight: config.scheduler.maxInflight,
      keepaliveIntervalMs: config.executor.keepaliveIntervalMs,
      keepaliveTimeoutMs: config.executor.keepaliveTimeoutMs,
      reconnectBaseMs: config.executor.reconnectBaseMs,
      reconnectMaxMs: config.executor.reconnectMaxMs,
      maxMessageBytes: config.executor.maxMessageBytes,
      workerAddress: config.ethereum.walletAddress,
      wcpVersion: buildVersion(),
      presignMaxTtlSeconds: Math.floor(config.subnetApi.urlTtlMs / 1000),
      ...(tls ? { tls } : {}),
      ...(ex.tlsServerName !== '' ? { tlsServerName: ex.tlsServerName } : {}),
    },
    storage: storageOptions(config),
    logLevel: config.log.level,
  };
}

/** Every component's options from the config, once. */
export function compileOptions(config: WcpConfig): CompiledOptions {
  return {
    rpc: rpcTransportOptions(config),
    txPolicy: txPolicy(config),
    lifecycle: lifecycleOptions(config),
    poller: pollerOptions(config),
    executor: executorTaskOptions(config),
    reconciler: (local) => reconcilerOptions(config, local),
  };
}
