/**
 * The operator's surface (issue 10) with the compiled binary on anvil and the SDK executor: `/readyz` is 503 naming
 * the executor while none runs and 200 once all is well; `/status` shows held activities per state and the lane;
 * a second `wcp run` on the same store exits with code 11 within 2 s while the first keeps working; a transaction
 * from the wallet that wcp did not send pauses claims (until the lane re-syncs) and says so; at balance 0 `/readyz` names the wallet; SIGHUP
 * drains and exits 0.
 */
import { expect, test } from 'bun:test';
import { Wallet } from 'ethers';
import { freePort } from '../scripts/lib/anvil.ts';
import { e2eSuite, enqueue, startSlowExecutor, type World } from './e2e-executor-harness.ts';
import { rpcBatch } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { until } from './support/wait.ts';
import { linesWith, logLines, startWcp } from './support/wcp.ts';

let w: World;
const { track, run, box } = e2eSuite(1, (world) => {
  w = world;
});

interface Ready {
  ready: boolean;
  failing: string[];
  checks: Array<{ name: string; ok: boolean; detail: string; fix?: string }>;
}

async function get(port: number, path: string): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3_000) });
    return { code: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return { code: 0, body: {} };
  }
}

test('readyz, status, one daemon per store, a foreign transaction, an empty wallet, SIGHUP', async () => {
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
  const wcp = run(sb, env);

  // No executor: not ready, and the executor check says so with its fix.
  const notReady = await until(
    async () => {
      const r = await get(metricsPort, '/readyz');
      const b = r.body as unknown as Ready;
      return r.code === 503 && b.failing?.includes('executor') && !b.failing.includes('funded') ? b : undefined;
    },
    (v) => Boolean(v),
    30_000,
    'readyz 503 naming only the executor',
  );
  expect(notReady?.checks.find((c) => c.name === 'executor')?.fix).toContain(`127.0.0.1:${execPort}`);
  expect((await get(metricsPort, '/healthz')).code).toBe(200);

  // Work (its queue becomes known to the TaskQueue: /readyz checks that too) and an executor: ready, and /status
  // shows what is held and the lane.
  const ids = await enqueue(w, me.queue, 6, 'test.slow', 'json:{}');
  track(await startSlowExecutor({ port: execPort, concurrency: 4, handlerMs: 4000 }));
  await until(
    async () => (await get(metricsPort, '/readyz')).code === 200,
    (v) => v,
    30_000,
    'readyz 200',
  );
  const status = await until(
    async () => {
      const s = (await get(metricsPort, '/status')).body as {
        lifecycle?: { held: Record<string, number> };
        lane?: { next_nonce: number };
      };
      const held = Object.values(s.lifecycle?.held ?? {}).reduce((a, b) => a + b, 0);
      // Held work, and the lane has sent its claim (a claim being prepared holds no nonce yet).
      return held > 0 && (s.lane?.next_nonce ?? 0) > 0 ? s : undefined;
    },
    (v) => Boolean(v),
    30_000,
    '/status shows held activities',
  );
  expect(status).toMatchObject({ state: 'running', lane: { state: 'running' }, store: { lane: {} } });
  expect((status as { lane: { next_nonce: number } }).lane.next_nonce).toBeGreaterThan(0);

  // A second daemon on the same store: refused at once with its own exit code, naming the first one's pid.
  const second = startWcp(sb, ['run'], env);
  const started = Date.now();
  const code = await second.exited;
  expect(Date.now() - started).toBeLessThan(2_000 + 3_000); // 2 s for wcp, a margin for process start on a busy box
  expect(code).toBe(11);
  expect(second.output()).toContain(`pid ${wcp.proc.pid}`);
  expect((await get(metricsPort, '/healthz')).code).toBe(200);

  // The same key used elsewhere: a transaction wcp did not send takes the nonce wcp is about to use.
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
  await enqueue(w, me.queue, 2, 'test.slow', 'json:{}'); // more work: wcp sends with its next nonce
  await until(
    () => logLines(wcp).find((l) => l.msg.startsWith('a transaction from this wallet was not sent by this wcp')),
    (v) => Boolean(v),
    60_000,
    'the foreign transaction noticed',
  );
  // Claims pause only until the lane has moved past the used nonce (test/e2e-idling.test.ts follows it through);
  // /status keeps the last one seen.
  expect(linesWith(wcp, 'claims paused').some((l) => l.reason === 'foreign_transaction')).toBe(true);
  expect(
    String(((await get(metricsPort, '/status')).body as { foreign_transaction?: string }).foreign_transaction),
  ).toContain('wcp did not send');

  // An empty wallet: not ready, naming the wallet.
  await rpcBatch(w.anvil.url, [['anvil_setBalance', [me.address, '0x0']]]);
  const broke = await until(
    async () => {
      const r = await get(metricsPort, '/readyz');
      return (r.body as unknown as Ready).failing?.includes('funded') ? r : undefined;
    },
    (v) => Boolean(v),
    45_000,
    'readyz naming the wallet',
  );
  expect(broke?.code).toBe(503);
  expect(((broke?.body ?? {}) as unknown as Ready).checks?.find((c) => c.name === 'funded')?.fix).toContain(me.address);
  await rpcBatch(w.anvil.url, [['anvil_setBalance', [me.address, '0x56bc75e2d63100000']]]);

  // SIGHUP drains like SIGTERM: exit 0.
  wcp.proc.kill('SIGHUP');
  expect(await wcp.exited).toBe(0);
  expect(logLines(wcp).some((l) => l.msg === 'signal received: draining' && l.signal === 'SIGHUP')).toBe(true);
  expect(ids.length).toBe(6);
}, 300_000);
