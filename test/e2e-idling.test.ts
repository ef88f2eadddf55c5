/**
 * No silent idling, with the compiled binary on anvil, the dev subnet-api and the SDK test executor:
 * - what cannot work is refused at start with a code and the field: `--config` without its value (2), a taken
 *   metrics port (12), a missing Multicall3 and a TaskQueue address that is not this deployment's (3), a lane too
 *   small to ever claim (3);
 * - `claims_paused` tells the truth: one daemon, each cause brought about and taken away in turn (a queue the
 *   TaskQueue never saw, an executor blip, a deactivated wallet, an empty wallet, a foreign transaction), each
 *   reason seen in `/status`, `wcp_claims_paused{reason}` and `wcp status`, and gone within seconds of its cause.
 */
import { expect, test } from 'bun:test';
import { createServer } from 'node:net';
import { Wallet } from 'ethers';
import { freePort } from '../scripts/lib/anvil.ts';
import { sendFromDeployer } from '../scripts/lib/deploy.ts';
import { e2eSuite, enqueue, startSlowExecutor, type World } from './e2e-executor-harness.ts';
import { rpcBatch } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { until } from './support/wait.ts';
import { assertRunning, linesWith, startWcp, type WcpProcess } from './support/wcp.ts';

let w: World;
const { track, run, box } = e2eSuite(2, (world) => {
  w = world;
});

interface Status {
  claims_paused?: string[];
  claims_paused_detail?: Record<string, Record<string, unknown>>;
}

async function get(port: number, path: string): Promise<{ code: number; text: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3_000) });
    return { code: res.status, text: await res.text() };
  } catch {
    return { code: 0, text: '' };
  }
}

const paused = async (port: number): Promise<string[] | undefined> => {
  const r = await get(port, '/status');
  return r.code === 200 ? ((JSON.parse(r.text) as Status).claims_paused ?? undefined) : undefined;
};

/** Waits until `/status` lists `reason` (or, with `held = false`, no longer lists it); returns how long it took. */
async function waitReason(wcp: WcpProcess, port: number, reason: string, held: boolean, ms = 15_000) {
  const t0 = Date.now();
  await until(
    async () => {
      assertRunning(wcp);
      return (await paused(port))?.includes(reason) === held;
    },
    (v) => v,
    ms,
    `claims_paused ${held ? 'lists' : 'no longer lists'} ${reason}`,
  );
  return Date.now() - t0;
}

const gauge = async (port: number, reason: string) =>
  Number(
    new RegExp(`^wcp_claims_paused\\{reason="${reason}"\\} (\\d+)`, 'm').exec((await get(port, '/metrics')).text)?.[1],
  );

test('refused at start with a code naming the field: --config alone, a taken metrics port, no Multicall3, a foreign TaskQueue, a lane of 2', async () => {
  const me = w.worker();
  const sb = box();
  const env = wcpEnv(me, executorSettings(await freePort(), w.api.grpcEndpoint));
  const once = async (args: string[], extra: Record<string, string> = {}) => {
    const p = startWcp(sb, args, { ...env, ...extra });
    return { code: await p.exited, out: p.output() };
  };

  const noValue = await once(['run', '--config']);
  expect(noValue.code).toBe(2);
  expect(noValue.out).toContain('option --config needs a value');
  expect(noValue.out).not.toContain('wcp starting');

  const taken = createServer();
  const port = await freePort();
  await new Promise<void>((r) => taken.listen(port, '127.0.0.1', () => r()));
  try {
    const busy = await once(['run'], { WCP__METRICS__ENABLED: 'true', WCP__METRICS__LISTEN: `127.0.0.1:${port}` });
    expect(busy.code).toBe(12);
    expect(busy.out).toContain(`metrics.listen 127.0.0.1:${port} cannot be served`);
    expect(busy.out).toContain('[LISTEN_FAILED]');
  } finally {
    taken.close();
  }

  const dead = '0x000000000000000000000000000000000000dEaD';
  const noMulticall = await once(['run'], { WCP__ETHEREUM__MULTICALL3_ADDRESS: dead });
  expect(noMulticall.code).toBe(3);
  expect(noMulticall.out).toContain(`ethereum.multicall3_address: no contract code at ${dead}`);
  expect(noMulticall.out).toContain('fix: set ethereum.multicall3_address to the address where Multicall3 is deployed');

  // The engine's address where the TaskQueue's should be: code, but not a TaskQueue of this control plane.
  const wrongQueue = await once(['run'], { WCP__ETHEREUM__TASK_QUEUE_ADDRESS: w.stack.addresses.workflowEngine });
  expect(wrongQueue.code).toBe(3);
  expect(wrongQueue.out).toContain('ethereum.task_queue_address');
  expect(wrongQueue.out).toContain('[CONTRACT_INVALID]');

  const lane = await once(['run'], { WCP__TX_POLICY__MAX_IN_FLIGHT: '2' });
  expect(lane.code).toBe(3);
  expect(lane.out).toContain('tx_policy.max_in_flight: got 2, expected at least 3');
}, 90_000);

test('claims_paused lists every reason while its cause lasts and drops it once the cause is gone', async () => {
  const me = w.worker();
  const sb = box();
  const metricsPort = await freePort();
  const execPort = await freePort();
  const env = wcpEnv(me, executorSettings(execPort, w.api.grpcEndpoint), {
    WCP__METRICS__ENABLED: 'true',
    WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}`,
    WCP__SCHEDULER__HEARTBEAT_INTERVAL: '2s',
    WCP__SHUTDOWN__DRAIN_TIMEOUT: '5s',
  });
  let exec = track(await startSlowExecutor({ port: execPort, concurrency: 4, handlerMs: 300 }));
  const wcp = run(sb, env);
  const cp = w.stack.contracts.subnetControlPlane.interface;
  const setActive = (on: boolean) =>
    sendFromDeployer(w.stack, [
      { to: w.stack.addresses.subnetControlPlane, data: cp.encodeFunctionData('setWorkerActive', [me.address, on]) },
    ]);
  const statusCli = () => {
    const p = startWcp(sb, ['status', '--json'], env);
    return p.exited.then(
      () =>
        JSON.parse(
          p
            .output()
            .split('\n')
            .findLast((l) => l.startsWith('{"source"')) ?? '{}',
        ) as Status,
    );
  };

  // 1. A queue nothing was ever enqueued on: paused (warned once), /readyz names it; the first enqueue clears it.
  await waitReason(wcp, metricsPort, 'unknown_queue', true, 30_000);
  const ready = JSON.parse((await get(metricsPort, '/readyz')).text) as { failing: string[] };
  expect(ready.failing).toContain('queue');
  expect(await gauge(metricsPort, 'unknown_queue')).toBe(1);
  const [first] = await enqueue(w, me.queue, 1, 'test.slow', 'json:{}');
  await waitReason(wcp, metricsPort, 'unknown_queue', false);
  await until(
    () => linesWith(wcp, 'claim sent').find((l) => String(l.activity_ids).split(',').includes(String(first))),
    (v) => Boolean(v),
    20_000,
    'the first activity claimed',
  );
  expect(
    linesWith(wcp, 'claims paused')
      .filter((l) => l.reason === 'unknown_queue')
      .map((l) => l.level),
  ).toEqual(['warn']);

  // 2. An executor blip: paused while it is away, clear within seconds of its return though no work waits.
  await until(
    () => get(metricsPort, '/readyz').then((r) => r.code === 200),
    (v) => v,
    20_000,
    'ready',
  );
  exec.kill('SIGKILL');
  await exec.exited;
  await waitReason(wcp, metricsPort, 'executor_not_ready', true);
  exec = track(await startSlowExecutor({ port: execPort, concurrency: 4, handlerMs: 300 }));
  expect(await waitReason(wcp, metricsPort, 'executor_not_ready', false, 8_000)).toBeLessThan(8_000);

  // 3. A deactivated wallet: worker_inactive in /status, the gauge and `wcp status`; reactivated: gone.
  await setActive(false);
  await waitReason(wcp, metricsPort, 'worker_inactive', true, 8_000);
  expect(await gauge(metricsPort, 'worker_inactive')).toBe(1);
  expect((await statusCli()).claims_paused).toContain('worker_inactive');
  expect(JSON.parse((await get(metricsPort, '/readyz')).text).failing).toContain('registered');
  await setActive(true);
  await waitReason(wcp, metricsPort, 'worker_inactive', false, 8_000);
  expect(await gauge(metricsPort, 'worker_inactive')).toBe(0);

  // 4. An empty wallet: wallet_unfunded, and no claim is sent for work that arrives meanwhile; funded: claimed.
  await rpcBatch(w.anvil.url, [['anvil_setBalance', [me.address, '0x0']]]);
  await waitReason(wcp, metricsPort, 'wallet_unfunded', true, 8_000);
  const sentBefore = linesWith(wcp, 'claim sent').length;
  const [broke] = await enqueue(w, me.queue, 1, 'test.slow', 'json:{}');
  await Bun.sleep(2_000); // eight poll rounds: found, not claimed
  expect(linesWith(wcp, 'claim sent').length).toBe(sentBefore);
  expect((await statusCli()).claims_paused).toContain('wallet_unfunded');
  await rpcBatch(w.anvil.url, [['anvil_setBalance', [me.address, '0x56bc75e2d63100000']]]);
  await waitReason(wcp, metricsPort, 'wallet_unfunded', false, 8_000);
  await until(
    () => linesWith(wcp, 'claim sent').find((l) => String(l.activity_ids).split(',').includes(String(broke))),
    (v) => Boolean(v),
    20_000,
    'claimed once funded',
  );

  // 5. A transaction from the wallet that wcp did not send: paused until the lane has re-synced, then claims again.
  const key = new Wallet(me.privateKey);
  const [nonceHex, gasPriceHex] = await rpcBatch(w.anvil.url, [
    ['eth_getTransactionCount', [me.address, 'pending']],
    ['eth_gasPrice', []],
  ]);
  const raw = await key.signTransaction({
    type: 2,
    chainId: w.anvil.chainId,
    nonce: Number(nonceHex),
    to: me.address,
    value: 0n,
    gasLimit: 21_000n,
    maxFeePerGas: BigInt(gasPriceHex as string) * 10n,
    maxPriorityFeePerGas: BigInt(gasPriceHex as string) * 5n,
  });
  await rpcBatch(w.anvil.url, [['eth_sendRawTransaction', [raw]]]);
  await enqueue(w, me.queue, 2, 'test.slow', 'json:{}'); // wcp claims with the nonce just taken
  await until(
    () => linesWith(wcp, 'claims paused').find((l) => l.reason === 'foreign_transaction'),
    (v) => Boolean(v),
    60_000,
    'claims paused for the foreign transaction',
  );
  await waitReason(wcp, metricsPort, 'foreign_transaction', false, 20_000);
  expect(linesWith(wcp, 'lane re-synced after a foreign transaction').length).toBeGreaterThan(0);
  const [after] = await enqueue(w, me.queue, 1, 'test.slow', 'json:{}');
  await until(
    () => linesWith(wcp, 'claim sent').find((l) => String(l.activity_ids).split(',').includes(String(after))),
    (v) => Boolean(v),
    20_000,
    'claims again after the re-sync, no restart',
  );

  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 240_000);
