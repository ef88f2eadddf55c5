import { describe, expect, test } from 'bun:test';
import { loadConfig } from '../config/load.ts';
import { lifecycleOptions } from './options.ts';

describe('lifecycle options', () => {
  test('every value comes from the validated config (env overrides included), the wallet lower-cased', () => {
    const config = loadConfig({
      env: {
        WCP__SCHEDULER__HEARTBEAT_INTERVAL: '7s',
        WCP__SCHEDULER__CLAIM_BATCH: '3',
        WCP__EXECUTOR__MAX_DISPATCH_ATTEMPTS: '5',
        WCP__STORE__DONE_RETENTION: '4h',
        WCP__TX_POLICY__BATCH: 'auto',
      },
      cwd: '/nonexistent',
    });
    const opts = lifecycleOptions(config);
    expect(opts).toEqual({
      wallet: config.ethereum.walletAddress.toLowerCase(),
      taskQueue: config.ethereum.taskQueue,
      workflowEngine: config.ethereum.workflowEngine,
      multicall3: config.ethereum.multicall3,
      queueName: config.scheduler.queueName,
      mode: config.scheduler.mode,
      maxInflight: config.scheduler.maxInflight,
      claimBatch: 3,
      heartbeatIntervalMs: 7_000,
      laneMaxInFlight: config.txPolicy.maxInFlight,
      maxDispatchAttempts: 5,
      reofferLostTasks: config.executor.reofferLostTasks,
      doneRetentionMs: 4 * 3_600_000,
      batch: { mode: 'per-call', reason: 'not decided yet (decided at start)' },
    });
    // The default is off (batching is opt-in for now).
    const off = loadConfig({ env: {}, cwd: '/nonexistent' });
    expect(lifecycleOptions(off).batch).toEqual({ mode: 'per-call', reason: 'tx_policy.batch = "off"' });
  });
});
