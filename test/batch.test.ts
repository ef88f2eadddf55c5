/**
 * The call batcher over a real tx manager, real LMDB and anvil with the reference contracts and the pinned batch
 * executor (the wallet delegated to it, EIP-7702): what one batch does per call. Library level (no daemon): the
 * binary's batch path is what every e2e test runs.
 *  - claims leave in one batch; its receipt, split per call, says which ids each call won;
 *  - a call that fails inside a mined batch costs only itself: its own event is `reverted` with its own revert
 *    decoded, the others succeed;
 *  - a call asked to be simulated that would fail is left out of the batch (refused, no gas);
 *  - a bumped batch: the replacement carries the same calls, and the lane record lists them after the bump.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { BATCH_EXECUTOR } from '../src/chain/batch-executor.ts';
import { untilTrue } from '../src/internal/testing/until.ts';
import { createLogger } from '../src/internal/logger.ts';
import { BATCH_CODEC, type Batcher, createBatcher, expandBatchEvent } from '../src/lifecycle/batcher.ts';
import { activityEvents, claimCall, completeCall } from '../src/lifecycle/calls.ts';
import { laneKey } from '../src/store/keys.ts';
import { LaneTxSchema } from '../src/store/records.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { createTxManager, type TxEvent, type TxManager } from '../src/txmgr/index.ts';
import { testTransport } from './support/transport.ts';

let anvil: Anvil;
let stack: Stack;
let store: Store;
let txm: TxManager;
let batcher: Batcher;
let dir: string;
const events: TxEvent[] = [];
const log = createLogger('test', { write: () => {} });
let worker: { address: string; privateKey: string };

/** The per-call events of `nonce` of one type, in call order. */
const callEvents = (nonce: number, type: 'mined' | 'confirmed') =>
  events
    .filter((e) => e.type === type && e.nonce === nonce)
    .flatMap((e) => expandBatchEvent(e, (logs) => BATCH_CODEC.failures(logs, worker.address)))
    .filter((e): e is Extract<TxEvent, { type: 'confirmed' | 'mined' }> => e.type === type);

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.5, accounts: 3 });
  stack = await deployStack({
    rpcUrl: anvil.url,
    deployerKey: anvil.accounts[0]!.privateKey,
    heartbeatTimeoutS: 60,
    batchExecutor: true,
  });
  worker = anvil.accounts[1]!;
  await registerWorker(stack, worker.address, 64);
  // Delegated the way `TxManager.delegate` does it: a self-sponsored authorization for the next nonce + 1.
  const w = new Wallet(worker.privateKey, stack.provider);
  const n = await stack.provider.getTransactionCount(worker.address);
  const auth = await w.authorize({ address: BATCH_EXECUTOR.address, nonce: n + 1 });
  await (await w.sendTransaction({ type: 4, to: worker.address, authorizationList: [auth], nonce: n })).wait();
  expect(await stack.provider.getCode(worker.address)).toBe(`0xef0100${BATCH_EXECUTOR.address.slice(2).toLowerCase()}`);

  dir = mkdtempSync(join(tmpdir(), 'wcp-batch-'));
  store = openStore({ path: join(dir, 'wcp.db'), logger: log });
  const rpc = testTransport(anvil.url, {}, log);
  const { txPolicy } = await import('../src/txmgr/options.ts');
  const { loadConfig } = await import('../src/config/load.ts');
  const cfgPath = join(dir, 'wcp.toml');
  await Bun.write(cfgPath, '');
  const policy = txPolicy(loadConfig({ path: cfgPath, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: worker.privateKey } }));
  txm = createTxManager({
    store,
    rpc,
    chainId: 31337,
    privateKey: worker.privateKey,
    policy: { ...policy, receiptPollMs: 100, bumpAfterMs: 1_500, bumpAfterBlocks: 0, rebroadcastMs: 1_000 },
    logger: log,
    onEvent: (ev) => {
      events.push(ev);
      batcher?.onTxEvent(ev);
    },
  });
  await txm.start();
  batcher = createBatcher({
    txm,
    codec: BATCH_CODEC,
    wallet: worker.address,
    log,
    now: Date.now,
    gasCap: () => 7_500_000n,
  });
}, 120_000);

afterAll(async () => {
  await txm?.stop();
  await store?.close();
  stack?.destroy();
  await anvil?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

const confirmedNonce = (nonce: number) =>
  untilTrue(
    () => events.some((e) => e.type === 'confirmed' && e.nonce === nonce),
    `nonce ${nonce} confirmed`,
    20_000,
    50,
  );

describe('the call batcher on anvil (wallet delegated to the pinned executor)', () => {
  let claimed: string[] = [];

  test('claims leave in one batch; its receipt per call says what each won', async () => {
    const ids = (await enqueueActivities(stack, { queue: 'b', count: 4 })).map(String);
    const [r1, r2] = await Promise.all([
      batcher.submit(claimCall(stack.addresses.taskQueue, ids.slice(0, 2))),
      batcher.submit(claimCall(stack.addresses.taskQueue, ids.slice(2))),
    ]);
    expect(r1.ok && r2.ok && r1.nonce === r2.nonce).toBe(true);
    const nonce = r1.ok ? r1.nonce : -1;
    await confirmedNonce(nonce);
    const per = callEvents(nonce, 'confirmed');
    expect(per.map((e) => [e.kind, e.activityIds, e.status])).toEqual([
      ['claim_batch', ids.slice(0, 2), 'success'],
      ['claim_batch', ids.slice(2), 'success'],
    ]);
    const won = activityEvents(per[0]!.logs, stack.addresses.taskQueue, worker.address).claimed;
    expect([...won.keys()].sort()).toEqual([...ids].sort());
    expect([...won.values()].every((w) => w === worker.address.toLowerCase())).toBe(true);
    claimed = ids;
  }, 30_000);

  test('a call failing inside a mined batch costs only itself: reverted with its own revert, the others succeed', async () => {
    const unknownId = '999999';
    const reqs = [
      completeCall(stack.addresses.taskQueue, claimed[0]!, 'json:{"a":"1"}'),
      completeCall(stack.addresses.taskQueue, unknownId, 'json:{}'),
      completeCall(stack.addresses.taskQueue, claimed[1]!, 'json:{"a":"2"}'),
    ];
    const res = await Promise.all(reqs.map((r) => batcher.submit(r)));
    const nonce = res[0]!.ok ? res[0]!.nonce : -1;
    expect(res.every((r) => r.ok && r.nonce === nonce)).toBe(true);
    await confirmedNonce(nonce);
    const batchEv = events.find((e) => e.type === 'confirmed' && e.nonce === nonce) as Extract<
      TxEvent,
      { type: 'confirmed' }
    >;
    expect(batchEv.kind).toBe('batch');
    expect(batchEv.status).toBe('success');
    const per = callEvents(nonce, 'confirmed');
    expect(per.map((e) => [e.activityIds[0], e.status])).toEqual([
      [claimed[0], 'success'],
      [unknownId, 'reverted'],
      [claimed[1], 'success'],
    ]);
    expect((per[1] as Extract<TxEvent, { type: 'confirmed' }>).revert?.name).toBe('UnknownActivity');
    const done = activityEvents(per[0]!.logs, stack.addresses.taskQueue, worker.address).completed;
    expect([...done].sort()).toEqual([claimed[0]!, claimed[1]!].sort());
  }, 30_000);

  test('a call asked to be simulated that would fail is left out of its batch, refused before any gas', async () => {
    const before = events.length;
    const [bad, good] = await Promise.all([
      batcher.submit({ ...completeCall(stack.addresses.taskQueue, claimed[0]!, 'json:{}'), simulate: true }),
      batcher.submit({ ...completeCall(stack.addresses.taskQueue, claimed[2]!, 'json:{"a":"3"}'), simulate: true }),
    ]);
    // claimed[0] was completed above: its second complete would revert.
    expect(bad.ok === false && bad.stage).toBe('simulate');
    expect(bad.ok === false && bad.revert?.name).toBe('NotClaimable');
    expect(good.ok).toBe(true);
    const nonce = good.ok ? good.nonce : -1;
    await confirmedNonce(nonce);
    expect(callEvents(nonce, 'confirmed').map((e) => [e.activityIds[0], e.status])).toEqual([[claimed[2], 'success']]);
    expect(events.slice(before).filter((e) => e.type === 'submitted')).toHaveLength(1);
  }, 30_000);

  test('a bumped batch: the replacement carries the same calls; the record lists them after the bump', async () => {
    await anvil.rpc('evm_setIntervalMining', [0]);
    await anvil.rpc('evm_setAutomine', [false]);
    try {
      const res = await batcher.submit(completeCall(stack.addresses.taskQueue, claimed[3]!, 'json:{"a":"4"}'));
      expect(res.ok).toBe(true);
      const nonce = res.ok ? res.nonce : -1;
      await untilTrue(() => events.some((e) => e.type === 'replaced' && e.nonce === nonce), 'bumped', 15_000, 50);
      const rec = store.get(laneKey(nonce), LaneTxSchema);
      expect(rec?.hashes.length).toBeGreaterThanOrEqual(2);
      expect(rec?.calls).toEqual([{ kind: 'complete', activity_ids: [claimed[3]!] }]);
      await anvil.rpc('evm_setAutomine', [true]);
      await anvil.rpc('evm_mine', []);
      await confirmedNonce(nonce);
      const per = callEvents(nonce, 'confirmed');
      expect(per.map((e) => [e.kind, e.activityIds[0], e.status])).toEqual([['complete', claimed[3], 'success']]);
      expect(rec?.hashes).toContain(per[0]!.hash);
    } finally {
      await anvil.rpc('evm_setAutomine', [false]);
      await anvil.rpc('evm_setIntervalMining', [1]);
    }
  }, 40_000);
});
