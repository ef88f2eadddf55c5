/**
 * Environments for the compiled binary in end-to-end tests: the one builder (`wcpEnv`, shared with the
 * benchmarks) and the settings layers each kind of test runs with. Pass them in order, e.g.
 * `wcpEnv({ rpcUrl, privateKey, queue }, LIFECYCLE_SETTINGS, { WCP__EXECUTOR__NOOP_DELAY: '60s' })`: a later layer wins.
 */
export { wcpEnv, type WcpEnvOptions } from '../../scripts/lib/wcp-env.ts';

/** Discovery and recording only (`scheduler.mode = observe`), polling every 200 ms. */
export const OBSERVE_SETTINGS: Readonly<Record<string, string>> = {
  WCP__SCHEDULER__POLL_INTERVAL: '200ms',
  WCP__SCHEDULER__MODE: 'observe',
};

/** Claim mode with the built-in no-op test executor (2.5 s tasks), fast polls, 1 s heartbeats, quick fee bumps. */
export const LIFECYCLE_SETTINGS: Readonly<Record<string, string>> = {
  WCP__SCHEDULER__POLL_INTERVAL: '200ms',
  WCP__SCHEDULER__MAX_INFLIGHT: '64',
  WCP__SCHEDULER__CLAIM_BATCH: '16',
  WCP__SCHEDULER__HEARTBEAT_INTERVAL: '1s',
  WCP__TX_POLICY__MAX_IN_FLIGHT: '64',
  WCP__TX_POLICY__BUMP_AFTER: '3s',
  WCP__TX_POLICY__BUMP_AFTER_BLOCKS: '0',
  WCP__TX_POLICY__RECEIPT_POLL: '100ms',
  WCP__RECONCILER__FOLLOW_INTERVAL: '250ms',
  WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'true',
  WCP__EXECUTOR__NOOP_DELAY: '2500ms',
  WCP__SHUTDOWN__DRAIN_TIMEOUT: '2s',
};

/** Claim mode with the built-in no-op test executor (1 s tasks), 3 s RPC timeout and heartbeats, 250 ms follows. */
export const RECONCILER_SETTINGS: Readonly<Record<string, string>> = {
  WCP__ETHEREUM__REQUEST_TIMEOUT: '3s',
  WCP__SCHEDULER__POLL_INTERVAL: '500ms',
  WCP__SCHEDULER__MAX_INFLIGHT: '64',
  WCP__SCHEDULER__CLAIM_BATCH: '16',
  WCP__SCHEDULER__HEARTBEAT_INTERVAL: '3s',
  WCP__TX_POLICY__MAX_IN_FLIGHT: '32',
  WCP__TX_POLICY__BUMP_AFTER: '4s',
  WCP__TX_POLICY__RECEIPT_POLL: '100ms',
  WCP__RECONCILER__FOLLOW_INTERVAL: '250ms',
  WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'true',
  WCP__EXECUTOR__NOOP_DELAY: '1s',
  WCP__SHUTDOWN__DRAIN_TIMEOUT: '1s',
};

/**
 * A real executor on loopback `executorPort` and the storage broker at `subnetApiGrpc`: short keepalives and
 * redials so a dead or frozen executor is noticed in about 2 s, 250 ms polls, a 20 s drain.
 */
export function executorSettings(executorPort: number, subnetApiGrpc: string): Record<string, string> {
  return {
    WCP__SCHEDULER__POLL_INTERVAL: '250ms',
    WCP__EXECUTOR__ENDPOINT: `127.0.0.1:${executorPort}`,
    WCP__EXECUTOR__KEEPALIVE_INTERVAL: '500ms',
    WCP__EXECUTOR__KEEPALIVE_TIMEOUT: '1500ms',
    WCP__EXECUTOR__RECONNECT_BASE: '100ms',
    WCP__EXECUTOR__RECONNECT_MAX: '500ms',
    WCP__SUBNET_API__GRPC_ENDPOINT: subnetApiGrpc,
    WCP__SHUTDOWN__DRAIN_TIMEOUT: '20s',
  };
}
