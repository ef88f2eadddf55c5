/**
 * The transaction manager's submit path against a slow, flaky node (real anvil behind `support/rpc-proxy.ts`):
 * a connection reset in a simulation or estimate is retried in place, not thrown; a submit whose estimate is slow
 * holds back no other submit; a priority submit (heartbeats) takes its turn first and uses its gas floor rather
 * than wait seconds for an estimate.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { createRpcTransport } from '../src/chain/transport.ts';
import { createLogger } from '../src/internal/logger.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { createTxManager, type SubmitResult, type TxManager, type TxPolicy } from '../src/txmgr/index.ts';
import { type RpcProxy, startRpcProxy } from './support/rpc-proxy.ts';

const POLICY: TxPolicy = {
  gasBumpPercent: 20,
  bumpAfterMs: 12_000,
  bumpAfterBlocks: 0,
  rebroadcastMs: 6_000,
  maxInFlight: 16,
  confirmations: 1,
  feeCapMultiplier: 5,
  maxFeePerGasWei: 500n * 10n ** 9n,
  minPriorityFeeWei: 10n ** 6n,
  gasLimitMarginPercent: 25,
  nonceTooLowAbortAfter: 3,
  refusedAbortAfter: 3,
  receiptPollMs: 100,
  insufficientFundsRetryMs: 1_000,
  laneHistory: 1_000,
  feeCacheMs: 200,
};

let anvil: Anvil;
let proxy: RpcProxy;
const dirs: string[] = [];
const stores: Store[] = [];
const managers: TxManager[] = [];

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 1, accounts: 4 });
  proxy = await startRpcProxy({ target: anvil.url });
}, 60_000);

afterAll(async () => {
  for (const m of managers) await m.stop().catch(() => {});
  for (const s of stores) await s.close().catch(() => {});
  await proxy?.close();
  await anvil?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 30_000);

async function started(account: number): Promise<{ m: TxManager; to: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-txmgr-slow-'));
  dirs.push(dir);
  const logger = createLogger('t', { write: () => {} });
  const store = openStore({ path: join(dir, 'wcp.db'), logger });
  stores.push(store);
  const rpc = createRpcTransport(
    {
      urls: [proxy.url],
      chainId: 31337,
      timeoutMs: 10_000,
      maxLagBlocks: 5,
      endpointBackoffMs: 100,
      endpointBackoffMaxMs: 500,
    },
    { logger },
  );
  const acct = anvil.accounts[account] as { privateKey: string };
  const m = createTxManager({
    store,
    rpc,
    chainId: 31337,
    privateKey: acct.privateKey,
    policy: POLICY,
    logger,
    onEvent: () => {},
  });
  managers.push(m);
  await m.start();
  // Value-free calls to an account with calldata: estimateGas and eth_call both answer, nothing reverts.
  return { m, to: (anvil.accounts[3] as { address: string }).address };
}

/** A submit and when it resolved (ms since `t0`). */
async function timed(p: Promise<SubmitResult>, t0: number): Promise<{ res: SubmitResult; ms: number }> {
  const res = await p;
  return { res, ms: Date.now() - t0 };
}

describe('txmgr submit on a slow, flaky node', () => {
  test('connection resets in the simulation and the estimate are retried inside the submit', async () => {
    const { m, to } = await started(0);
    const sim = proxy.addRule({ match: 'eth_call', action: { type: 'cutBeforeForward' }, times: 2 });
    const est = proxy.addRule({ match: 'eth_estimateGas', action: { type: 'cutBeforeForward' }, times: 2 });
    const res = await m.submit({ kind: 'complete', activityIds: ['1'], to, data: '0x1234', simulate: true });
    expect(res.ok).toBe(true);
    expect([sim.hits, est.hits]).toEqual([2, 2]);
    sim.remove();
    est.remove();
  }, 30_000);

  test('a slow estimate delays its own submit only; a priority submit goes first and uses its gas floor', async () => {
    const { m, to } = await started(1);
    const slow = proxy.addRule({ match: 'eth_estimateGas', action: { type: 'delay', ms: 3_000 } });
    const t0 = Date.now();
    const complete = timed(m.submit({ kind: 'complete', activityIds: ['1'], to, data: '0x01' }), t0);
    await new Promise((r) => setTimeout(r, 100));
    const heartbeat = timed(
      m.submit({ kind: 'heartbeat', activityIds: ['1'], to, data: '0x02', minGasLimit: 65_000n, priority: true }),
      t0,
    );
    const hb = await heartbeat;
    expect(hb.res.ok && hb.res.nonce).toBe(0);
    expect(hb.res.ok && hb.res.gasLimit).toBe(65_000n);
    expect(hb.ms).toBeLessThan(2_000);
    const c = await complete;
    expect(c.res.ok && c.res.nonce).toBe(1);
    expect(c.ms).toBeGreaterThanOrEqual(3_000);
    slow.remove();
  }, 30_000);

  test('a submit its caller no longer wants when its turn comes is withdrawn without using a nonce', async () => {
    const { m, to } = await started(2);
    const res = await m.submit({ kind: 'heartbeat', activityIds: ['1'], to, data: '0x03', stillWanted: () => false });
    expect(res.ok ? 'sent' : res.stage).toBe('withdrawn');
    const next = await m.submit({ kind: 'heartbeat', activityIds: ['1'], to, data: '0x04', stillWanted: () => true });
    expect(next.ok && next.nonce).toBe(0);
  }, 30_000);
});
