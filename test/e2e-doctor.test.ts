/**
 * `wcp doctor` (issue 10) with the compiled binary: it passes on a working stack (anvil with the reference
 * contracts, a registered and funded wallet, the SDK executor, the dev subnet-api), and fails naming the cause
 * when Multicall3's address has no code, when the TaskQueue never saw `scheduler.queue_name`, when the RPC port is closed, or when the wallet is not registered. It
 * sends no transaction.
 */
import { expect, test } from 'bun:test';
import { freePort } from '../scripts/lib/anvil.ts';
import { e2eSuite, enqueue, startSlowExecutor, type World } from './e2e-executor-harness.ts';
import { blockNumber, rpcBatch } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { type Sandbox, startWcp } from './support/wcp.ts';

/** `wcp doctor` without blocking this process (the dev subnet-api runs in it). */
async function doctor(sb: Sandbox, args: string[], env: Record<string, string>) {
  const p = startWcp(sb, ['doctor', ...args], env);
  const code = await p.exited;
  return { code, stdout: p.output() };
}

let w: World;
const { track, box } = e2eSuite(1, (world) => {
  w = world;
});

const nonceOf = async (addr: string) =>
  Number((await rpcBatch(w.anvil.url, [['eth_getTransactionCount', [addr, 'latest']]]))[0]);

test('passes on a working stack and sends nothing; fails naming Multicall3, an unknown queue, a closed RPC port, an unregistered wallet', async () => {
  const me = w.worker();
  const exec = track(await startSlowExecutor({ concurrency: 2 }));
  const env = wcpEnv(me, executorSettings(exec.port, w.api.grpcEndpoint));
  const sb = box();
  // The worker's queue exists once something was enqueued on it (by another account: the wallet sends nothing).
  await enqueue(w, me.queue, 1, 'test.slow', 'json:{}');
  const nonceBefore = await nonceOf(me.address);

  const ok = await doctor(sb, [], env);
  expect(ok.stdout).toContain('all checks passed');
  expect(ok.code).toBe(0);
  expect(ok.stdout).toMatch(/ok +executor: .*types test\.slow/);
  expect(ok.stdout).toMatch(/ok +worker registered and active/);
  const json = JSON.parse((await doctor(sb, ['--json'], env)).stdout) as {
    ok: boolean;
    checks: Array<{ name: string; status: string }>;
  };
  expect(json.ok).toBe(true);
  expect(json.checks.map((c) => c.name)).toContain('code at Multicall3');
  expect(await nonceOf(me.address)).toBe(nonceBefore);

  const noMulticall = await doctor(sb, [], {
    ...env,
    WCP__ETHEREUM__MULTICALL3_ADDRESS: '0x000000000000000000000000000000000000dEaD',
  });
  expect(noMulticall.code).toBe(1);
  expect(noMulticall.stdout).toMatch(
    /FAIL {2}code at Multicall3: no contract code at 0x000000000000000000000000000000000000dEaD/,
  );
  expect(noMulticall.stdout).toContain('ethereum.multicall3_address');

  // A queue name the TaskQueue has never seen: wcp would poll it forever and find nothing.
  const noQueue = await doctor(sb, [], { ...env, WCP__SCHEDULER__QUEUE_NAME: `${me.queue}-typo` });
  expect(noQueue.code).toBe(1);
  expect(noQueue.stdout).toMatch(
    new RegExp(
      `FAIL {2}queue known to the TaskQueue: scheduler.queue_name "${me.queue}-typo": nothing was ever enqueued on it`,
    ),
  );
  expect(ok.stdout).toMatch(
    new RegExp(`ok +queue known to the TaskQueue: scheduler.queue_name "${me.queue}" is queue #\\d+`),
  );

  const closed = `http://127.0.0.1:${await freePort()}`;
  const down = await doctor(sb, [], { ...env, WCP__ETHEREUM__RPC_URL: closed });
  expect(down.code).toBe(1);
  expect(down.stdout).toMatch(/FAIL {2}rpc #0 http:\/\/127\.0\.0\.1:\d+: connection refused/);

  const stranger = w.anvil.accounts[9]!;
  const unregistered = await doctor(sb, [], { ...env, WCP__ETHEREUM__WALLET_PRIVATE_KEY: stranger.privateKey });
  expect(unregistered.code).toBe(1);
  expect(unregistered.stdout).toContain(`${stranger.address} is not registered`);
  expect(await blockNumber(w.anvil.url)).toBeGreaterThan(0);
}, 120_000);
