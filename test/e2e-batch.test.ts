/**
 * EIP-7702 delegation with the compiled binary (issue 21), on one anvil with the reference contracts and the pinned
 * batch executor: `wcp run` with `tx_policy.batch = "auto"` delegates the wallet at start (logged, in `/status`), a
 * delegated wallet still works activities to the end; `wcp key undelegate` is refused while the daemon holds the
 * store and revokes after it stopped (the wallet's code is empty again, no nonce skipped); with
 * `WCP__TX_POLICY__BATCH=off` nothing is delegated. The foreign-delegate and cancun cases run in-process
 * (test/batch-mode.test.ts).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { type Anvil, freePort, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { BATCH_EXECUTOR, designatorFor } from '../src/chain/batch-executor.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from './support/env.ts';
import { doneRecords } from './support/store.ts';
import { until } from './support/wait.ts';
import { finishSandbox, linesWith, runWcp, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let anvil: Anvil;
let stack: Stack;
let sb: Sandbox;
const procs: WcpProcess[] = [];

beforeAll(async () => {
  anvil = await startAnvil();
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey, batchExecutor: true });
  await registerWorker(stack, anvil.accounts[1]!.address, 8);
  sb = sandbox();
}, 120_000);
afterAll(async () => {
  finishSandbox('e2e-batch', sb, procs);
  stack?.destroy();
  await anvil?.stop();
}, 60_000);

const wallet = () => anvil.accounts[1]!.address;
const codeOf = () => anvil.rpc<string>('eth_getCode', [wallet(), 'latest']);
const nonceOf = async () => Number(await anvil.rpc<string>('eth_getTransactionCount', [wallet(), 'latest']));

test('run delegates at start and still finishes work; undelegate is refused while it runs and revokes after; batch=off delegates nothing', async () => {
  await enqueueActivities(stack, { queue: 'batch', count: 2 });
  const port = await freePort();
  const env = wcpEnv(
    { rpcUrl: anvil.url, privateKey: anvil.accounts[1]!.privateKey, queue: 'batch' },
    LIFECYCLE_SETTINGS,
    {
      WCP__TX_POLICY__BATCH: 'auto',
      WCP__EXECUTOR__NOOP_DELAY: '200ms',
      WCP__METRICS__ENABLED: 'true',
      WCP__METRICS__LISTEN: `127.0.0.1:${port}`,
    },
  );
  const w = startWcp(sb, ['run'], env);
  procs.push(w);
  await w.waitFor(/batching lifecycle calls through the wallet/, 30_000);
  expect(linesWith(w, 'wallet delegated to: none (a plain EOA)')).toHaveLength(1);
  expect((await codeOf()).toLowerCase()).toBe(designatorFor(BATCH_EXECUTOR.address));
  // A delegated wallet still claims, heartbeats and completes (per-call until the batcher lands).
  await until(
    () => doneRecords(sb),
    (d) => d.filter((r) => r.outcome === 'completed').length === 2,
    30_000,
    '2 completed',
  );
  const status = runWcp(sb, ['status', '--json'], env);
  expect(status.code, status.stderr).toBe(0);
  const body = JSON.parse(status.stdout) as { delegation: { kind: string }; batch: { mode: string; executor: string } };
  expect(body.delegation.kind).toBe('pinned');
  expect(body.batch).toEqual({ mode: 'batch', executor: BATCH_EXECUTOR.address });

  const refused = runWcp(sb, ['key', 'undelegate'], env);
  expect(refused.code).toBe(11);
  expect(refused.stderr).toContain('stop the daemon first');
  w.proc.kill('SIGTERM');
  expect(await w.exited).toBe(0);

  const before = await nonceOf();
  const revoked = runWcp(sb, ['key', 'undelegate'], env);
  expect(revoked.code, revoked.stderr).toBe(0);
  expect(revoked.stdout).toContain('revoked by 0x');
  expect(await codeOf()).toBe('0x');
  // The revocation's own nonce and its authorization's: nothing skipped, nothing else sent.
  expect(await nonceOf()).toBe(before + 2);
  const again = runWcp(sb, ['key', 'undelegate'], env);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('nothing to revoke');

  const off = startWcp(sb, ['run'], { ...env, WCP__TX_POLICY__BATCH: 'off' });
  procs.push(off);
  await off.waitFor(/wallet delegated to: none/, 30_000);
  await off.waitFor(/supervisor running/, 30_000);
  expect(await codeOf()).toBe('0x');
  expect(linesWith(off, /batching lifecycle calls/)).toHaveLength(0);
  off.proc.kill('SIGTERM');
  expect(await off.exited).toBe(0);
}, 120_000);
