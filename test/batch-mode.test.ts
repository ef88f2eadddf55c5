/**
 * The batch mode decided at start (`src/supervisor/batch-mode.ts`) and the doctor's delegation check, with a real
 * tx manager on anvil: a wallet not delegated is delegated to the pinned executor (then batching), a restart finds it
 * pinned and sends nothing, a wallet delegated to a foreign contract is left alone (per-call, with a warning naming
 * the delegate), `tx_policy.batch = "off"` sends nothing; a chain accepting type-4 without the executor, and a cancun
 * chain that refuses type-4, stay per-call. One default anvil and one `--hardfork cancun` anvil for the file.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { createProvider, deployBatchExecutor, laneSigner } from '../scripts/lib/deploy.ts';
import { acceptsType4, BATCH_EXECUTOR, designatorFor } from '../src/chain/batch-executor.ts';
import type { RpcClient } from '../src/chain/transport.ts';
import { loadConfig } from '../src/config/load.ts';
import { delegationCheck } from '../src/doctor/chain-checks.ts';
import { createLogger } from '../src/internal/logger.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { decideBatchMode } from '../src/supervisor/batch-mode.ts';
import { createTxManager, type TxEvent, type TxManager } from '../src/txmgr/index.ts';
import { txPolicy } from '../src/txmgr/options.ts';
import { testTransport } from './support/transport.ts';

let anvil: Anvil;
let cancun: Anvil;
const dirs: string[] = [];
const stores: Store[] = [];
const managers: TxManager[] = [];
const logs: string[] = [];

beforeAll(async () => {
  [anvil, cancun] = await Promise.all([startAnvil(), startAnvil({ args: ['--hardfork', 'cancun'] })]);
}, 60_000);

afterAll(async () => {
  for (const m of managers) await m.stop().catch(() => {});
  for (const s of stores) await s.close().catch(() => {});
  await Promise.all([anvil?.stop(), cancun?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

const rpcOf = (a: Anvil): RpcClient => testTransport(a.url, { chainId: a.chainId, timeoutMs: 5_000 });

/** A fresh funded wallet on `a`, its config (`batch` setting) and a started tx manager on a new store. */
async function worker(a: Anvil, setting: 'auto' | 'off' = 'auto') {
  const w = Wallet.createRandom();
  await a.rpc('anvil_setBalance', [w.address, '0x56bc75e2d63100000']);
  const dir = mkdtempSync(join(tmpdir(), 'wcp-batch-mode-'));
  dirs.push(dir);
  const config = loadConfig({
    env: {
      WCP__ETHEREUM__WALLET_PRIVATE_KEY: w.privateKey,
      WCP__ETHEREUM__WALLET_ADDRESS: '',
      WCP__ETHEREUM__RPC_URL: a.url,
      WCP__TX_POLICY__BATCH: setting,
      WCP__TX_POLICY__RECEIPT_POLL: '100ms',
    },
    cwd: '/nonexistent',
  });
  const store = openStore({ path: join(dir, 'wcp.db'), logger: createLogger('store', { write: () => {} }) });
  stores.push(store);
  const events: TxEvent[] = [];
  const log = createLogger('t', { json: true, level: 'debug', write: (l) => logs.push(l) });
  const rpc = rpcOf(a);
  const txm = createTxManager({
    store,
    rpc,
    chainId: a.chainId,
    privateKey: w.privateKey,
    policy: txPolicy(config),
    logger: log,
    onEvent: (ev) => events.push(ev),
  });
  managers.push(txm);
  await txm.start();
  const decide = () =>
    decideBatchMode({ setting, rpc, txm, wallet: w.address, chainId: a.chainId, log: log.child('batch') });
  return { w, config, rpc, txm, events, decide };
}

const code = (a: Anvil, addr: string) => a.rpc<string>('eth_getCode', [addr, 'latest']);
const sent = (a: Anvil, addr: string) => a.rpc<string>('eth_getTransactionCount', [addr, 'latest']).then(Number);

describe('batch mode at start', () => {
  test('a chain accepting type-4 without the executor: per-call, nothing sent; the doctor warns', async () => {
    const me = await worker(anvil);
    const r = await me.decide();
    expect(r.batch).toEqual({
      mode: 'per-call',
      reason: `the batch executor is not deployed at ${BATCH_EXECUTOR.address} on chain ${anvil.chainId}`,
    });
    expect(await sent(anvil, me.w.address)).toBe(0);
    const doc = await delegationCheck(me.config, anvil.url, 5_000);
    expect(doc.status).toBe('warn');
    expect(doc.detail).toContain('not deployed');
  });

  test('not delegated: delegated to the pinned executor, then batching; a restart finds it pinned and sends nothing', async () => {
    const { provider, chainId } = await createProvider(anvil.url);
    await deployBatchExecutor({ provider, signer: laneSigner(anvil.accounts[9]!.privateKey, provider), chainId });
    provider.destroy();
    const me = await worker(anvil);
    expect((await delegationCheck(me.config, anvil.url, 5_000)).detail).toContain(
      'wcp delegates it to the pinned executor',
    );
    const r = await me.decide();
    expect(r).toEqual({ batch: { mode: 'batch', executor: BATCH_EXECUTOR.address }, delegation: { kind: 'pinned' } });
    expect((await code(anvil, me.w.address)).toLowerCase()).toBe(designatorFor(BATCH_EXECUTOR.address));
    expect(await sent(anvil, me.w.address)).toBe(2);
    const again = await me.decide();
    expect(again.batch.mode).toBe('batch');
    expect(await sent(anvil, me.w.address)).toBe(2);
    const doc = await delegationCheck(me.config, anvil.url, 5_000);
    expect(doc).toMatchObject({ status: 'pass' });
    expect(doc.detail).toContain('lifecycle calls are batched');
    expect(logs.some((l) => l.includes('wallet delegated to: the pinned batch executor'))).toBe(true);
  });

  test('delegated to a foreign contract: per-call with a warning naming it, never re-delegated; the doctor warns', async () => {
    const me = await worker(anvil);
    const foreign = anvil.accounts[8]!.address; // any address: a delegation need not point at code
    const nonce = await sent(anvil, me.w.address);
    const auth = await me.w.connect(null).authorize({ address: foreign, nonce: nonce + 1, chainId: anvil.chainId });
    const { provider } = await createProvider(anvil.url);
    const tx = await me.w
      .connect(provider)
      .sendTransaction({ type: 4, to: me.w.address, authorizationList: [auth], gasLimit: 100_000n });
    await tx.wait();
    provider.destroy();
    const before = await sent(anvil, me.w.address);
    const r = await me.decide();
    expect(r.batch).toEqual({ mode: 'per-call', reason: `the wallet is delegated to a foreign contract ${foreign}` });
    expect(r.delegation).toEqual({ kind: 'foreign', delegate: foreign });
    expect((await code(anvil, me.w.address)).toLowerCase()).toBe(designatorFor(foreign));
    expect(await sent(anvil, me.w.address)).toBe(before);
    const warned = logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.delegate === foreign && l.level === 'warn');
    expect(String(warned?.msg)).toContain('not the pinned batch executor');
    const doc = await delegationCheck(me.config, anvil.url, 5_000);
    expect(doc.status).toBe('warn');
    expect(doc.detail).toContain(foreign);
  });

  test('tx_policy.batch = "off": per-call, nothing sent', async () => {
    const me = await worker(anvil, 'off');
    expect((await me.decide()).batch).toEqual({ mode: 'per-call', reason: 'tx_policy.batch = "off"' });
    expect(await sent(anvil, me.w.address)).toBe(0);
  });

  test('a cancun chain refuses type-4 (detected): per-call; the default chain accepts it', async () => {
    const { provider, chainId } = await createProvider(cancun.url);
    // Deployed there too: the refusal, not a missing executor, is what keeps it per-call.
    await deployBatchExecutor({ provider, signer: laneSigner(cancun.accounts[9]!.privateKey, provider), chainId });
    provider.destroy();
    const me = await worker(cancun);
    const r = await me.decide();
    expect(r.batch.mode).toBe('per-call');
    expect(r.batch.mode === 'per-call' && r.batch.reason).toContain('does not accept type-4');
    expect(await sent(cancun, me.w.address)).toBe(0);
    expect(await acceptsType4(rpcOf(anvil), me.w.address, anvil.chainId)).toEqual({ accepted: true });
    expect((await delegationCheck(me.config, cancun.url, 5_000)).detail).toContain('does not accept type-4');
  });
});
