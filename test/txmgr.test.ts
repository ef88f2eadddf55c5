/**
 * The transaction manager against a real anvil node and real LMDB: pipelining, drops, fee spikes, restarts,
 * crash between persist and send, a proxy that cuts connections, dead and lagging endpoints, an empty wallet and
 * reverting calls. Fakes (named as such): small node:http proxies in front of anvil.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Interface, keccak256, Transaction, Wallet } from 'ethers';
import solc from 'solc';
import { type Anvil, freePort, rpcCall, startAnvil } from '../scripts/lib/anvil.ts';
import { createProvider, deployBatchExecutor, laneSigner } from '../scripts/lib/deploy.ts';
import { BATCH_EXECUTOR, designatorFor, readDelegation, ZERO_ADDRESS } from '../src/chain/batch-executor.ts';
import { ethersAuthorization, recordAuthorization } from '../src/txmgr/authorization.ts';
import { createRpcTransport } from '../src/chain/transport.ts';
import { loadConfig } from '../src/config/load.ts';
import { createLogger } from '../src/internal/logger.ts';
import { laneKey, NONCE_LAST, txKey } from '../src/store/keys.ts';
import { type LaneTx, LaneTxSchema, TxRefSchema } from '../src/store/records.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { createTxManager, type TxEvent, type TxManager, type TxPolicy } from '../src/txmgr/index.ts';
import { txPolicy } from '../src/txmgr/options.ts';
import { untilTrue } from '../src/internal/testing/until.ts';
import { testTransport } from './support/transport.ts';

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract Claims {
  error NotClaimable(uint256 activityId, uint8 status);
  event ActivityClaimed(uint256 indexed activityId, address indexed worker);
  mapping(uint256 => address) public claimedBy;
  function claimActivity(uint256 activityId) external {
    if (claimedBy[activityId] != address(0)) revert NotClaimable(activityId, 2);
    claimedBy[activityId] = msg.sender;
    emit ActivityClaimed(activityId, msg.sender);
  }
}`;
const iface = new Interface([
  'function claimActivity(uint256 activityId)',
  'event ActivityClaimed(uint256 indexed activityId, address indexed worker)',
]);
const claimData = (id: number) => iface.encodeFunctionData('claimActivity', [id]);
const CLAIMED_TOPIC = iface.getEvent('ActivityClaimed')?.topicHash as string;

const FAST: Partial<TxPolicy> = {
  receiptPollMs: 100,
  bumpAfterMs: 4_000,
  bumpAfterBlocks: 0,
  rebroadcastMs: 1_500,
  insufficientFundsRetryMs: 400,
  feeCacheMs: 200,
};

/** The policy the daemon compiles from a config file with nothing set (the schema's defaults). */
function defaultPolicy(key: string): TxPolicy {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-txmgr-config-'));
  dirs.push(dir);
  const path = join(dir, 'empty.toml');
  writeFileSync(path, '');
  return txPolicy(loadConfig({ path, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: key } }));
}

const dirs: string[] = [];
const stores: Store[] = [];
const managers: TxManager[] = [];
const servers: Server[] = [];
const logLines: string[] = [];
const keysUsed: string[] = [];

function newStore(): Store {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-txmgr-'));
  dirs.push(dir);
  const s = openStore({ path: join(dir, 'wcp.db'), logger: createLogger('store', { write: () => {} }) });
  stores.push(s);
  return s;
}

function mk(opts: { store: Store; urls: string[]; key: string; policy?: Partial<TxPolicy> }): {
  m: TxManager;
  events: TxEvent[];
} {
  const events: TxEvent[] = [];
  keysUsed.push(opts.key);
  const logger = createLogger('t', {
    json: true,
    level: 'debug',
    write: (l) => {
      logLines.push(l);
      if (process.env.TXMGR_TEST_LOG) process.stderr.write(`${l}\n`);
    },
  });
  const rpc = createRpcTransport(
    {
      urls: opts.urls,
      chainId: 31337,
      timeoutMs: 2_000,
      maxLagBlocks: 5,
      endpointBackoffMs: 100,
      endpointBackoffMaxMs: 1_000,
    },
    { logger: logger.child('rpc') },
  );
  const m = createTxManager({
    store: opts.store,
    rpc,
    chainId: 31337,
    privateKey: opts.key,
    policy: { ...defaultPolicy(opts.key), ...FAST, ...opts.policy },
    logger,
    onEvent: (ev) => events.push(ev),
  });
  managers.push(m);
  return { m, events };
}

/**
 * What a crash between the durable reservation and the send leaves behind: `rec` reserved at `fees` (signed, never
 * sent) and `nonce:last` = `nonceLast`.
 */
async function leaveUnsent(
  store: Store,
  rec: Pick<LaneTx, 'nonce' | 'kind' | 'activity_ids' | 'to' | 'data' | 'gas_limit' | 'hashes' | 'authorization_list'>,
  fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  nonceLast: number,
): Promise<void> {
  const t = Date.now();
  const full: LaneTx = {
    ...rec,
    value: '0',
    max_fee_per_gas: String(fees.maxFeePerGas),
    max_priority_fee_per_gas: String(fees.maxPriorityFeePerGas),
    attempts: 1,
    state: 'reserved',
    created_at_ms: t,
    updated_at_ms: t,
  };
  await store.transact(
    (tx) => {
      tx.put(laneKey(rec.nonce), full);
      tx.put(NONCE_LAST, { nonce: nonceLast, updated_at_ms: t });
    },
    { durable: true },
  );
}

const waitFor = (what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 15_000) =>
  untilTrue(pred, what, timeoutMs, 50);

const confirmed = (evs: TxEvent[]) =>
  evs.filter((e): e is Extract<TxEvent, { type: 'confirmed' }> => e.type === 'confirmed');
const nonceOf = async (a: Anvil, addr: string, tag = 'latest') =>
  Number(BigInt(await a.rpc<string>('eth_getTransactionCount', [addr, tag])));

/** A fake RPC endpoint in front of anvil; `hook` may answer or mangle a request. */
async function proxy(
  target: string,
  hook: (
    body: { method: string; params: unknown[]; id: unknown },
    forward: () => Promise<string>,
    res: import('node:http').ServerResponse,
  ) => Promise<boolean>,
): Promise<{ url: string; calls: string[] }> {
  const calls: string[] = [];
  const srv = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => {
      raw += d;
    });
    req.on('end', async () => {
      const body = JSON.parse(raw) as { method: string; params: unknown[]; id: unknown };
      calls.push(body.method);
      const forward = async () =>
        (await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw })).text();
      try {
        if (await hook(body, forward, res)) return;
        res.setHeader('content-type', 'application/json');
        res.end(await forward());
      } catch {
        res.destroy();
      }
    });
  });
  servers.push(srv);
  const port = await freePort();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${port}`, calls };
}

let anvil: Anvil;
let contract: string;

async function deploy(a: Anvil): Promise<string> {
  const out = JSON.parse(
    solc.compile(
      JSON.stringify({
        language: 'Solidity',
        sources: { 'C.sol': { content: SOURCE } },
        settings: { evmVersion: 'cancun', outputSelection: { '*': { '*': ['evm.bytecode.object'] } } },
      }),
    ),
  ) as { contracts: Record<string, Record<string, { evm: { bytecode: { object: string } } }>> };
  const bytecode = `0x${out.contracts['C.sol']?.Claims?.evm.bytecode.object}`;
  const deployer = a.accounts[9] as { address: string; privateKey: string };
  const w = new Wallet(deployer.privateKey);
  const raw = await w.signTransaction({
    type: 2,
    chainId: 31337,
    nonce: 0,
    data: bytecode,
    gasLimit: 1_000_000n,
    maxFeePerGas: 10n ** 11n,
    maxPriorityFeePerGas: 10n ** 9n,
  });
  const hash = await a.rpc<string>('eth_sendRawTransaction', [raw]);
  let r: { contractAddress: string } | null = null;
  await waitFor('deploy', async () => {
    r = await a.rpc<{ contractAddress: string } | null>('eth_getTransactionReceipt', [hash]);
    return r !== null;
  });
  return (r as unknown as { contractAddress: string }).contractAddress;
}

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 1, accounts: 11 });
  contract = await deploy(anvil);
}, 120_000);

afterAll(async () => {
  for (const m of managers) await m.stop().catch(() => {});
  for (const s of servers) s.close();
  for (const s of stores) await s.close().catch(() => {});
  await anvil?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  // The key never reaches a log line.
  const all = logLines.join('\n').toLowerCase();
  for (const k of keysUsed) expect(all.includes(k.slice(2).toLowerCase())).toBe(false);
}, 60_000);

describe('txmgr on anvil', () => {
  test('50 txs back-to-back all confirm, nonces 0..49 each used once, backpressure holds', async () => {
    const acct = anvil.accounts[0] as { address: string; privateKey: string };
    const store = newStore();
    const { m, events } = mk({ store, urls: [anvil.url], key: acct.privateKey, policy: { maxInFlight: 16 } });
    await m.start();
    let maxSeen = 0;
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const r = await m.submit({
          kind: 'claim',
          activityIds: [String(1000 + i)],
          to: contract,
          data: claimData(1000 + i),
        });
        maxSeen = Math.max(maxSeen, m.inFlight());
        return r;
      }),
    );
    expect(maxSeen).toBeLessThanOrEqual(16);
    const nonces = results.map((r) => (r.ok ? r.nonce : -1)).sort((a, b) => a - b);
    expect(nonces).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await waitFor('50 confirmations', () => confirmed(events).length >= 50, 30_000);
    const c = confirmed(events);
    expect(new Set(c.map((e) => e.nonce)).size).toBe(50);
    expect(c.every((e) => e.status === 'success' && e.logs.some((l) => l.topics[0] === CLAIMED_TOPIC))).toBe(true);
    expect(await nonceOf(anvil, acct.address)).toBe(50);
    expect(store.get(laneKey(49), LaneTxSchema)?.state).toBe('confirmed');
    // Nonces go in the order submits are ready (their estimates answered), not strictly in call order: each id's
    // tx ref points at the nonce its own submit got.
    const last = results[49];
    expect(store.get(txKey('1049'), TxRefSchema)?.nonce).toBe(last?.ok ? last.nonce : -1);
    await m.stop();
  }, 40_000);

  test('a slow node: submits are reserved while earlier ones are on the wire, each on disk before it is sent, sent in nonce order', async () => {
    const acct = anvil.accounts[10] as { address: string; privateKey: string };
    const store = newStore();
    const sentNonces: number[] = [];
    /** Lane records on disk when each send arrived, and whether that send's own record was there. */
    const onDisk: number[] = [];
    let ownMissing = 0;
    const p = await proxy(anvil.url, async (body, forward, res) => {
      if (body.method !== 'eth_sendRawTransaction') return false;
      const nonce = Transaction.from(String(body.params[0])).nonce;
      if (!sentNonces.includes(nonce)) sentNonces.push(nonce);
      if (!store.has(laneKey(nonce))) ownMissing++;
      onDisk.push(store.count('lane:'));
      await new Promise((r) => setTimeout(r, 150)); // every send takes a slow node's round trip
      res.setHeader('content-type', 'application/json');
      res.end(await forward());
      return true;
    });
    const { m, events } = mk({ store, urls: [p.url], key: acct.privateKey, policy: { rebroadcastMs: 60_000 } });
    await m.start();
    const n = 12;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        m.submit({ kind: 'claim', activityIds: [String(8500 + i)], to: contract, data: claimData(8500 + i) }),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(ownMissing).toBe(0);
    // First sends in nonce order, one at a time…
    expect(sentNonces.slice(0, n)).toEqual(Array.from({ length: n }, (_, i) => i));
    // …while later nonces were reserved meanwhile: a send did not hold the lane (with the send inside the turn,
    // at most the nonce being sent was on disk when it arrived).
    expect(Math.max(...onDisk.slice(0, n).map((d, i) => d - (i + 1)))).toBeGreaterThan(0);
    await waitFor(`${n} confirmations`, () => confirmed(events).length >= n, 30_000);
    expect(await nonceOf(anvil, acct.address)).toBe(n);
    await m.stop();
  }, 40_000);

  test('a reverting call is refused by simulation and estimation without using a nonce; an on-chain revert is decoded', async () => {
    const acct = anvil.accounts[1] as { address: string; privateKey: string };
    const { m, events } = mk({ store: newStore(), urls: [anvil.url], key: acct.privateKey });
    await m.start();
    const before = await nonceOf(anvil, acct.address, 'pending');
    const sim = await m.submit({
      kind: 'claim',
      activityIds: ['1000'],
      to: contract,
      data: claimData(1000),
      simulate: true,
    });
    expect(sim.ok).toBe(false);
    if (!sim.ok) {
      expect(sim.stage).toBe('simulate');
      expect(sim.revert?.name).toBe('NotClaimable');
      expect(sim.revert?.args).toEqual(['1000', '2']);
    }
    const est = await m.submit({ kind: 'claim', activityIds: ['1001'], to: contract, data: claimData(1001) });
    expect(est.ok === false && est.stage === 'estimate' && est.revert?.name === 'NotClaimable').toBe(true);
    expect(m.status().nextNonce).toBe(before);
    expect(await nonceOf(anvil, acct.address, 'pending')).toBe(before);
    // Forced on chain (explicit gas, no simulation): confirmed as reverted with the reason replayed.
    const r = await m.submit({
      kind: 'claim',
      activityIds: ['1002'],
      to: contract,
      data: claimData(1002),
      gasLimit: 100_000n,
    });
    expect(r.ok).toBe(true);
    await waitFor('reverted receipt', () => confirmed(events).length === 1);
    const c = confirmed(events)[0];
    expect(c?.status).toBe('reverted');
    expect(c?.revert?.name).toBe('NotClaimable');
    await m.stop();
  }, 20_000);

  test('a tx dropped from the pool is re-sent and confirms', async () => {
    const acct = anvil.accounts[2] as { address: string; privateKey: string };
    const { m, events } = mk({ store: newStore(), urls: [anvil.url], key: acct.privateKey });
    await m.start();
    await anvil.rpc('evm_setIntervalMining', [0]);
    try {
      const r = await m.submit({ kind: 'heartbeat', activityIds: ['2000'], to: contract, data: claimData(2000) });
      if (!r.ok) throw new Error('submit failed');
      await anvil.rpc('anvil_dropTransaction', [r.hash]);
      expect(await anvil.rpc('eth_getTransactionByHash', [r.hash])).toBeNull();
      await waitFor('re-send', async () => (await anvil.rpc('eth_getTransactionByHash', [r.hash])) !== null, 8_000);
      await anvil.mine();
    } finally {
      await anvil.rpc('evm_setIntervalMining', [1]);
    }
    await waitFor('confirmation', () => confirmed(events).length === 1);
    expect(confirmed(events)[0]?.nonce).toBe(0);
    await m.stop();
  }, 20_000);

  test('restart: pending txs are re-synced, confirmed once, no gap and no reuse', async () => {
    const acct = anvil.accounts[3] as { address: string; privateKey: string };
    const store = newStore();
    const a = mk({ store, urls: [anvil.url], key: acct.privateKey });
    await a.m.start();
    await anvil.rpc('evm_setIntervalMining', [0]);
    let hashes: string[] = [];
    try {
      const rs = await Promise.all(
        [0, 1, 2, 3, 4].map((i) =>
          a.m.submit({ kind: 'claim', activityIds: [String(3000 + i)], to: contract, data: claimData(3000 + i) }),
        ),
      );
      hashes = rs.map((r) => (r.ok ? r.hash : ''));
      await a.m.stop(); // the "crash": nothing confirmed, all five in the node's pool
      // Make it harder: the node lost one of them meanwhile.
      await anvil.rpc('anvil_dropTransaction', [hashes[3]]);
      const b = mk({ store, urls: [anvil.url], key: acct.privateKey });
      await b.m.start();
      expect(b.m.status().nextNonce).toBe(5);
      await anvil.rpc('evm_setIntervalMining', [1]);
      await waitFor('5 confirmations after restart', () => confirmed(b.events).length === 5, 15_000);
      const r6 = await b.m.submit({ kind: 'claim', activityIds: ['3005'], to: contract, data: claimData(3005) });
      expect(r6.ok && r6.nonce).toBe(5);
      await waitFor('6th confirmation', () => confirmed(b.events).length === 6);
      expect(
        confirmed(b.events)
          .map((e) => e.nonce)
          .sort(),
      ).toEqual([0, 1, 2, 3, 4, 5]);
      expect(b.events.some((e) => e.type === 'failed')).toBe(false);
      expect(await nonceOf(anvil, acct.address)).toBe(6);
      // Every activity was claimed exactly once, by its own nonce.
      for (const e of confirmed(b.events)) expect(e.logs.filter((l) => l.topics[0] === CLAIMED_TOPIC)).toHaveLength(1);
      await b.m.stop();
    } finally {
      await anvil.rpc('evm_setIntervalMining', [1]);
    }
  }, 30_000);

  test('a reservation persisted but never broadcast is sent after restart with the same meaning; a missing record is filled with a noop', async () => {
    const acct = anvil.accounts[4] as { address: string; privateKey: string };
    const store = newStore();
    const a = mk({ store, urls: [anvil.url], key: acct.privateKey });
    await a.m.start();
    const r0 = await a.m.submit({ kind: 'claim', activityIds: ['4000'], to: contract, data: claimData(4000) });
    expect(r0.ok).toBe(true);
    await waitFor('first confirmation', () => confirmed(a.events).length === 1);
    await a.m.stop();
    // What a crash between the durable reservation and the send leaves behind: lane:1 reserved (signed, never
    // sent), nonce:last = 2, and no record at all for nonce 2 (as if that write was lost).
    const w = new Wallet(acct.privateKey);
    const fees = { maxFeePerGas: 5_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
    const raw = await w.signTransaction({
      type: 2,
      chainId: 31337,
      nonce: 1,
      to: contract,
      data: claimData(4001),
      gasLimit: 120_000n,
      ...fees,
    });
    await leaveUnsent(
      store,
      {
        nonce: 1,
        kind: 'claim',
        activity_ids: ['4001'],
        to: contract,
        data: claimData(4001),
        gas_limit: '120000',
        hashes: [Transaction.from(raw).hash as string],
      },
      fees,
      2,
    );
    const b = mk({ store, urls: [anvil.url], key: acct.privateKey });
    await b.m.start();
    expect(b.m.status().nextNonce).toBe(3);
    await waitFor('reserved + noop confirmed', () => confirmed(b.events).length === 2, 15_000);
    const byNonce = new Map(confirmed(b.events).map((e) => [e.nonce, e]));
    expect(byNonce.get(1)?.kind).toBe('claim');
    expect(byNonce.get(1)?.logs[0]?.topics[1]).toBe(`0x${(4001).toString(16).padStart(64, '0')}`);
    expect(byNonce.get(2)?.kind).toBe('noop');
    const lane1 = store.get(laneKey(1), LaneTxSchema);
    expect(lane1?.to).toBe(contract);
    expect(lane1?.data).toBe(claimData(4001));
    expect(store.get(laneKey(2), LaneTxSchema)?.to).toBe(acct.address);
    const r3 = await b.m.submit({ kind: 'claim', activityIds: ['4003'], to: contract, data: claimData(4003) });
    expect(r3.ok && r3.nonce).toBe(3);
    await waitFor('nonce 3', () => confirmed(b.events).length === 3);
    expect(await nonceOf(anvil, acct.address)).toBe(4);
    await b.m.stop();
  }, 30_000);

  test('a proxy that cuts the connection after forwarding the send: no nonce drift, each tx confirms once', async () => {
    const acct = anvil.accounts[5] as { address: string; privateKey: string };
    let cut = 0;
    const p = await proxy(anvil.url, async (body, forward, res) => {
      if (body.method !== 'eth_sendRawTransaction') return false;
      await forward(); // the node got it…
      cut++;
      res.destroy(); // …but we never hear back
      return true;
    });
    const { m, events } = mk({ store: newStore(), urls: [p.url], key: acct.privateKey });
    await m.start();
    const r0 = await m.submit({ kind: 'claim', activityIds: ['5000'], to: contract, data: claimData(5000) });
    const r1 = await m.submit({ kind: 'claim', activityIds: ['5001'], to: contract, data: claimData(5001) });
    expect(r0.ok && r0.nonce).toBe(0);
    expect(r1.ok && r1.nonce).toBe(1);
    await waitFor('both confirmed', () => confirmed(events).length === 2, 15_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(
      confirmed(events)
        .map((e) => e.nonce)
        .sort(),
    ).toEqual([0, 1]);
    expect(cut).toBeGreaterThanOrEqual(2);
    expect(await nonceOf(anvil, acct.address)).toBe(2);
    await m.stop();
  }, 20_000);

  test('one endpoint down, then one lagging: the lane keeps going', async () => {
    const acct = anvil.accounts[6] as { address: string; privateKey: string };
    const dead = `http://127.0.0.1:${await freePort()}`;
    const store = newStore();
    const a = mk({ store, urls: [dead, anvil.url], key: acct.privateKey });
    await a.m.start();
    const rs = await Promise.all(
      [0, 1, 2].map((i) =>
        a.m.submit({ kind: 'heartbeat', activityIds: [String(6000 + i)], to: contract, data: claimData(6000 + i) }),
      ),
    );
    expect(rs.every((r) => r.ok)).toBe(true);
    await waitFor('3 confirmed with a dead endpoint', () => confirmed(a.events).length === 3);
    expect(a.m.status().endpoints[0]?.up).toBe(false);
    await a.m.stop();

    // A fake endpoint frozen 20 blocks back: stale head, no receipts, stale nonces. Reading from it would stall.
    const frozen = (await anvil.blockNumber()) - 20;
    const lag = await proxy(anvil.url, async (body, _forward, res) => {
      const answer = (result: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result }));
        return true;
      };
      if (body.method === 'eth_blockNumber') return answer(`0x${frozen.toString(16)}`);
      if (body.method === 'eth_getTransactionReceipt') return answer(null);
      if (body.method === 'eth_getTransactionCount') return answer('0x0');
      return false;
    });
    const b = mk({ store, urls: [lag.url, anvil.url], key: acct.privateKey });
    await b.m.start();
    const rs2 = await Promise.all(
      [3, 4, 5].map((i) =>
        b.m.submit({ kind: 'heartbeat', activityIds: [String(6000 + i)], to: contract, data: claimData(6000 + i) }),
      ),
    );
    // Nonces follow readiness (estimates), not call order: the three take 3, 4 and 5 between them.
    expect(rs2.map((r) => (r.ok ? r.nonce : -1)).sort()).toEqual([3, 4, 5]);
    await waitFor('3 more confirmed with a lagging endpoint', () => confirmed(b.events).length === 3);
    expect(lag.calls.filter((c) => c === 'eth_getTransactionReceipt')).toHaveLength(0);
    expect(await nonceOf(anvil, acct.address)).toBe(6);
    await b.m.stop();
  }, 30_000);

  test('an empty wallet: a clear event, no crash, new submits refused; funding it resumes the lane', async () => {
    const poor = Wallet.createRandom();
    const { m, events } = mk({ store: newStore(), urls: [anvil.url], key: poor.privateKey });
    await m.start();
    const r = await m.submit({ kind: 'claim', activityIds: ['7000'], to: contract, data: claimData(7000) });
    expect(r.ok).toBe(true);
    await waitFor('insufficientFunds event', () => events.some((e) => e.type === 'insufficientFunds'));
    expect(m.status().fundsBlocked).toBe(true);
    const refused = await m.submit({ kind: 'claim', activityIds: ['7001'], to: contract, data: claimData(7001) });
    expect(refused.ok === false && refused.stage === 'funds' && refused.error.code === 'TX_INSUFFICIENT_FUNDS').toBe(
      true,
    );
    await anvil.rpc('anvil_setBalance', [poor.address, '0xde0b6b3a7640000']);
    await waitFor(
      'funds restored and confirmed',
      () => events.some((e) => e.type === 'fundsRestored') && confirmed(events).length === 1,
      15_000,
    );
    expect(m.status().fundsBlocked).toBe(false);
    expect(events.filter((e) => e.type === 'insufficientFunds')).toHaveLength(1);
    await m.stop();
  }, 20_000);
});

describe('txmgr: a transaction every node refuses', () => {
  test('refused outright three times (intrinsic gas too low): given up, its nonce filled with a noop, the lane goes on', async () => {
    const w = Wallet.createRandom();
    await anvil.rpc('anvil_setBalance', [w.address, '0xde0b6b3a7640000']);
    const store = newStore();
    const { m, events } = mk({ store, urls: [anvil.url], key: w.privateKey });
    await m.start();
    // 20k gas cannot even pay for the call's intrinsic cost: fees do not change the node's answer.
    const bad = await m.submit({
      kind: 'claim',
      activityIds: ['9500'],
      to: contract,
      data: claimData(9500),
      gasLimit: 20_000n,
    });
    expect(bad.ok && bad.nonce).toBe(0);
    const next = await m.submit({ kind: 'claim', activityIds: ['9501'], to: contract, data: claimData(9501) });
    expect(next.ok && next.nonce).toBe(1);
    await waitFor(
      'the refused tx given up and the next one confirmed',
      () => confirmed(events).some((e) => e.nonce === 1),
      20_000,
    );
    const f = events.find((e): e is Extract<TxEvent, { type: 'failed' }> => e.type === 'failed');
    expect(f).toMatchObject({ nonce: 0, kind: 'claim', activityIds: ['9500'] });
    expect(f?.error.code).toBe('TX_REFUSED');
    expect(f?.error.message).toContain('intrinsic gas too low');
    expect(events.filter((e) => e.type === 'failed')).toHaveLength(1);
    // Nonce 0 went to a noop self-transfer, nonce 1 to the next claim; nothing else was mined for the wallet.
    expect(await nonceOf(anvil, w.address)).toBe(2);
    await waitFor('the noop at nonce 0 confirmed', () => store.get(laneKey(0), LaneTxSchema)?.state === 'confirmed');
    expect(store.get(laneKey(0), LaneTxSchema)).toMatchObject({ kind: 'noop', to: w.address, activity_ids: [] });
    expect(store.get(laneKey(1), LaneTxSchema)).toMatchObject({
      kind: 'claim',
      state: 'confirmed',
      activity_ids: ['9501'],
    });
    await m.stop();
  }, 30_000);
});

describe('txmgr: foreign nonce use and reorgs', () => {
  test('someone else mines our nonce: the slot fails with a clear error and the lane continues', async () => {
    const acct = anvil.accounts[7] as { address: string; privateKey: string };
    const { m, events } = mk({ store: newStore(), urls: [anvil.url], key: acct.privateKey });
    await m.start();
    await anvil.rpc('evm_setIntervalMining', [0]);
    try {
      const r = await m.submit({ kind: 'claim', activityIds: ['9000'], to: contract, data: claimData(9000) });
      if (!r.ok) throw new Error('submit failed');
      // The same key used elsewhere: a different tx for nonce 0, paying far above our fee cap.
      const w = new Wallet(acct.privateKey);
      const foreign = await w.signTransaction({
        type: 2,
        chainId: 31337,
        nonce: 0,
        to: acct.address,
        value: 0n,
        gasLimit: 21_000n,
        maxFeePerGas: r.maxFeePerGas * 100n,
        maxPriorityFeePerGas: r.maxFeePerGas * 50n,
      });
      await anvil.rpc('eth_sendRawTransaction', [foreign]);
      await anvil.mine();
    } finally {
      await anvil.rpc('evm_setIntervalMining', [1]);
    }
    await waitFor('failed event', () => events.some((e) => e.type === 'failed'));
    const f = events.find((e): e is Extract<TxEvent, { type: 'failed' }> => e.type === 'failed');
    expect(f?.nonce).toBe(0);
    expect(f?.error.code).toBe('TX_NONCE_TOO_LOW');
    expect(f?.activityIds).toEqual(['9000']);
    const r1 = await m.submit({ kind: 'claim', activityIds: ['9001'], to: contract, data: claimData(9001) });
    expect(r1.ok && r1.nonce).toBe(1);
    await waitFor('lane continues', () => confirmed(events).some((e) => e.nonce === 1));
    expect(confirmed(events).some((e) => e.nonce === 0)).toBe(false);
    await m.stop();
  }, 20_000);

  test('a receipt that vanishes in a reorg moves the slot back to pending; it is re-sent and confirmed', async () => {
    const acct = anvil.accounts[8] as { address: string; privateKey: string };
    const { m, events } = mk({
      store: newStore(),
      urls: [anvil.url],
      key: acct.privateKey,
      policy: { confirmations: 4 },
    });
    await m.start();
    const r = await m.submit({ kind: 'claim', activityIds: ['9100'], to: contract, data: claimData(9100) });
    expect(r.ok).toBe(true);
    await waitFor('mined', () => events.some((e) => e.type === 'mined'));
    // Replace the last 2 blocks (ours included) with empty ones.
    await anvil.rpc('anvil_reorg', [2, []]);
    await waitFor('reorged', () => events.some((e) => e.type === 'reorged'), 10_000);
    await waitFor('confirmed after the reorg', () => confirmed(events).length === 1, 15_000);
    expect(confirmed(events)[0]?.nonce).toBe(0);
    expect(await nonceOf(anvil, acct.address)).toBe(1);
    await m.stop();
  }, 30_000);
});

describe('txmgr: a reorg deeper than the confirmations', () => {
  test('confirmed txs taken back by a reorg are re-opened and re-sent (same nonce, same bytes); the lane does not stall', async () => {
    // A fresh wallet: every dev account already has a test of its own.
    const w = Wallet.createRandom();
    await anvil.rpc('anvil_setBalance', [w.address, '0x56bc75e2d63100000']);
    const store = newStore();
    const { m, events } = mk({ store, urls: [anvil.url], key: w.privateKey, policy: { confirmations: 1 } });
    await m.start();
    for (const id of [9200, 9201])
      expect((await m.submit({ kind: 'claim', activityIds: [String(id)], to: contract, data: claimData(id) })).ok).toBe(
        true,
      );
    await waitFor('both confirmed', () => confirmed(events).length === 2);
    const firstBlock = Math.min(...confirmed(events).map((e) => e.blockNumber));
    const before = new Map(confirmed(events).map((e) => [e.nonce, e.hash]));
    // Every block from the first tx's on is replaced by an empty one: both txs are gone, the nonce is back to 0.
    // (Mining paused meanwhile: a block landing between reading the head and the reorg would spare ours.)
    await anvil.rpc('evm_setIntervalMining', [0]);
    try {
      await anvil.rpc('anvil_reorg', [(await anvil.blockNumber()) - firstBlock + 1, []]);
    } finally {
      await anvil.rpc('evm_setIntervalMining', [1]);
    }
    expect(await nonceOf(anvil, w.address)).toBe(0);
    // A new tx (nonce 2) would wait behind the hole forever if nothing re-sent nonces 0 and 1.
    const r2 = await m.submit({ kind: 'claim', activityIds: ['9202'], to: contract, data: claimData(9202) });
    expect(r2.ok && r2.nonce).toBe(2);
    await waitFor(
      'all three on chain',
      async () => (await nonceOf(anvil, w.address)) === 3 && confirmed(events).length === 5,
      20_000,
    );
    expect(events.filter((e) => e.type === 'reorged').map((e) => e.nonce)).toEqual([0, 1]);
    // Each nonce kept its meaning (the first hash recorded is the one first mined) and is mined again with one of
    // its recorded hashes; the lane records say so.
    for (const n of [0, 1, 2]) {
      const rec = store.get(laneKey(n), LaneTxSchema) as LaneTx;
      const onChain = await anvil.rpc<{ blockHash: string } | null>('eth_getTransactionReceipt', [rec.mined_hash]);
      expect({
        n,
        data: rec.data,
        state: rec.state,
        mined: onChain !== null,
        known: rec.hashes.includes(rec.mined_hash as string),
      }).toEqual({
        n,
        data: claimData(9200 + n),
        state: 'confirmed',
        mined: true,
        known: true,
      });
      if (n < 2) expect(rec.hashes[0]).toBe(before.get(n) as string);
    }
    await m.stop();
  }, 40_000);
});

describe('txmgr: a nonce gap filled from what the node still knows', () => {
  test('our transactions still in the pool at nonces with no lane record are re-sent with their bytes; only the rest get noops', async () => {
    // What a life that signed nonces 0..2 leaves when its lane records are gone (a wiped store, or a reorg that
    // took back nonce 0 and left the later ones queued in the pool): nonce:last = 2, no records, the pool holds
    // our claims at nonces 1 and 2 behind the missing nonce 0.
    const w = Wallet.createRandom();
    await anvil.rpc('anvil_setBalance', [w.address, '0x56bc75e2d63100000']);
    const fees = { maxFeePerGas: 5_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
    const hashes = new Map<number, string>();
    for (const n of [1, 2]) {
      const raw = await w.signTransaction({
        type: 2,
        chainId: 31337,
        nonce: n,
        to: contract,
        data: claimData(9300 + n),
        gasLimit: 120_000n,
        ...fees,
      });
      hashes.set(n, await anvil.rpc<string>('eth_sendRawTransaction', [raw]));
    }
    const store = newStore();
    await store.transact((tx) => tx.put(NONCE_LAST, { nonce: 2, updated_at_ms: Date.now() }), { durable: true });
    const { m, events } = mk({ store, urls: [anvil.url], key: w.privateKey });
    await m.start();
    expect(m.status().nextNonce).toBe(3);
    await waitFor('nonces 0..2 confirmed', () => confirmed(events).length === 3, 20_000);
    const byNonce = new Map(confirmed(events).map((e) => [e.nonce, e]));
    expect(byNonce.get(0)?.kind).toBe('noop');
    for (const n of [1, 2]) {
      // The claim the nonce carried, mined with the very bytes the pool held (not cancelled by a noop).
      expect(byNonce.get(n)).toMatchObject({ kind: 'claim', activityIds: [String(9300 + n)], hash: hashes.get(n) });
      expect(byNonce.get(n)?.logs[0]?.topics[1]).toBe(`0x${(9300 + n).toString(16).padStart(64, '0')}`);
      expect(store.get(laneKey(n), LaneTxSchema)).toMatchObject({ kind: 'claim', data: claimData(9300 + n) });
      expect(store.get(txKey(String(9300 + n)), TxRefSchema)?.nonce).toBe(n);
    }
    expect(await nonceOf(anvil, w.address)).toBe(3);
    await m.stop();
  }, 40_000);
});

describe('txmgr fee spike (mining paused)', () => {
  test('a base-fee spike is survived by bumping; the replacement pays ≥ 110% of the previous fees', async () => {
    const a2 = await startAnvil({ noMining: true });
    try {
      const acct = a2.accounts[0] as { address: string; privateKey: string };
      const { m, events } = mk({
        store: newStore(),
        urls: [a2.url],
        key: acct.privateKey,
        policy: { bumpAfterMs: 1_000 },
      });
      await m.start();
      const r = await m.submit({
        kind: 'heartbeat',
        activityIds: ['8000'],
        to: acct.address,
        data: '0x',
        gasLimit: 21_000n,
      });
      if (!r.ok) throw new Error('submit failed');
      // The next block's base fee jumps above what the tx pays: it cannot be included.
      await a2.rpc('anvil_setNextBlockBaseFeePerGas', [`0x${(r.maxFeePerGas * 2n).toString(16)}`]);
      await a2.mine();
      const blk = await a2.rpc<{ transactions: string[] }>('eth_getBlockByNumber', ['latest', false]);
      expect(blk.transactions).toHaveLength(0);
      await waitFor('a replacement', () => events.some((e) => e.type === 'replaced'), 10_000);
      const rep = events.find((e): e is Extract<TxEvent, { type: 'replaced' }> => e.type === 'replaced');
      expect(rep?.oldHash).toBe(r.hash);
      expect((rep?.maxFeePerGas ?? 0n) * 100n).toBeGreaterThanOrEqual(r.maxFeePerGas * 110n);
      expect((rep?.maxPriorityFeePerGas ?? 0n) * 100n).toBeGreaterThanOrEqual(r.maxPriorityFeePerGas * 110n);
      await waitFor(
        'confirmed after the spike',
        async () => {
          await a2.mine();
          return confirmed(events).length === 1;
        },
        10_000,
      );
      const c = confirmed(events)[0];
      expect(c?.hash).not.toBe(r.hash);
      expect(await rpcCall<string>(a2.url, 'eth_getTransactionCount', [acct.address, 'latest'])).toBe('0x1');
      await m.stop();
    } finally {
      await a2.stop();
    }
  }, 25_000);

  test('a node answering "underpriced" to bytes it already holds is not paid more: the same tx confirms', async () => {
    const a2 = await startAnvil({ noMining: true });
    try {
      const acct = a2.accounts[0] as { address: string; privateKey: string };
      let underpriced = 0;
      // The first send goes through; every re-send of the same bytes gets "underpriced" (some nodes say this
      // instead of "already known").
      let first = true;
      const p = await proxy(a2.url, async (body, forward, res) => {
        if (body.method !== 'eth_sendRawTransaction') return false;
        if (first) {
          first = false;
          return false;
        }
        await forward();
        underpriced++;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: body.id,
            error: { code: -32000, message: 'replacement transaction underpriced' },
          }),
        );
        return true;
      });
      const { m, events } = mk({
        store: newStore(),
        urls: [p.url],
        key: acct.privateKey,
        policy: { rebroadcastMs: 300, bumpAfterMs: 60_000 },
      });
      await m.start();
      const r = await m.submit({
        kind: 'heartbeat',
        activityIds: ['8100'],
        to: acct.address,
        data: '0x',
        gasLimit: 21_000n,
      });
      if (!r.ok) throw new Error('submit failed');
      await waitFor('re-sends answered "underpriced"', () => underpriced >= 3, 10_000);
      expect(events.filter((e) => e.type === 'replaced')).toEqual([]);
      await a2.mine();
      await waitFor('confirmed', () => confirmed(events).length === 1, 10_000);
      expect(confirmed(events)[0]?.hash).toBe(r.hash);
      await m.stop();
    } finally {
      await a2.stop();
    }
  }, 25_000);
});

describe('txmgr: EIP-7702 delegation (type 4)', () => {
  /** A fresh funded wallet per test: delegations change its code. */
  async function fresh(): Promise<{ address: string; privateKey: string }> {
    const w = Wallet.createRandom();
    await anvil.rpc('anvil_setBalance', [w.address, '0x56bc75e2d63100000']);
    return { address: w.address, privateKey: w.privateKey };
  }
  const codeOf = (a: string) => anvil.rpc<string>('eth_getCode', [a, 'latest']);
  const sink = () => (anvil.accounts[9] as { address: string }).address;

  beforeAll(async () => {
    const { provider, chainId } = await createProvider(anvil.url);
    await deployBatchExecutor({
      provider,
      signer: laneSigner((anvil.accounts[9] as { privateKey: string }).privateKey, provider),
      chainId,
    });
    provider.destroy();
  }, 30_000);

  test('delegate to the pinned executor: two nonces used, a submit made meanwhile waits and gets the one after; revoke; nothing else is signed', async () => {
    const acct = await fresh();
    const { m, events } = mk({ store: newStore(), urls: [anvil.url], key: acct.privateKey });
    await m.start();
    const before = await m.submit({ kind: 'claim', activityIds: ['7000'], to: sink(), data: '0x' });
    expect(before.ok && before.nonce).toBe(0);
    const delegating = m.delegate(BATCH_EXECUTOR.address);
    expect(m.delegation()).toBeDefined();
    // Sent while the delegation is prepared or pending: held, then given the nonce after the authorization's.
    const during = m.submit({ kind: 'claim', activityIds: ['7001'], to: sink(), data: '0x' });
    const d = await delegating;
    expect(d).toMatchObject({ ok: true, nonce: 1 });
    expect((await codeOf(acct.address)).toLowerCase()).toBe(designatorFor(BATCH_EXECUTOR.address));
    const r = await during;
    expect(r.ok && r.nonce).toBe(3);
    await waitFor('the held submit confirms', () => confirmed(events).some((e) => e.nonce === 3));
    expect(await nonceOf(anvil, acct.address)).toBe(4);
    expect(events.some((e) => e.type === 'foreignTx' || e.type === 'failed')).toBe(false);
    // The lane record carries the signed authorization (nonce + 1), so a re-sign is the same transaction.
    const rec = stores.at(-1)?.get(laneKey(1), LaneTxSchema);
    expect(rec?.kind).toBe('delegate');
    expect(rec?.authorization_list?.[0]).toMatchObject({ nonce: 2, address: BATCH_EXECUTOR.address });

    // Nothing but the pinned executor or the zero address is ever signed.
    const foreign = await m.delegate(sink());
    expect(foreign.ok).toBe(false);
    expect(await nonceOf(anvil, acct.address, 'pending')).toBe(4);

    const revoked = await m.delegate(ZERO_ADDRESS);
    expect(revoked).toMatchObject({ ok: true, nonce: 4 });
    expect(await codeOf(acct.address)).toBe('0x');
    const after = await m.submit({ kind: 'claim', activityIds: ['7002'], to: sink(), data: '0x' });
    expect(after.ok && after.nonce).toBe(6);
    await waitFor('confirmed after the revocation', () => confirmed(events).some((e) => e.nonce === 6));
    expect(events.some((e) => e.type === 'foreignTx' || e.type === 'failed')).toBe(false);
    await m.stop();
  }, 30_000);

  test('kill -9 between the durable record and the broadcast: the restart sends the same delegation, holds the lane until it is mined, no gap, no foreign-tx alarm', async () => {
    const acct = await fresh();
    const store = newStore();
    // What a crash right after the reservation leaves: lane:0 `delegate`, reserved, signed with the authorization
    // for nonce 1, never sent; nonce:last = 0.
    const w = new Wallet(acct.privateKey);
    const auth = recordAuthorization(w.authorizeSync({ address: BATCH_EXECUTOR.address, nonce: 1, chainId: 31337 }));
    const fees = { maxFeePerGas: 5_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
    const raw = await w.signTransaction({
      type: 4,
      chainId: 31337,
      nonce: 0,
      to: acct.address,
      data: '0x',
      gasLimit: 100_000n,
      authorizationList: [ethersAuthorization(auth)],
      ...fees,
    });
    await leaveUnsent(
      store,
      {
        nonce: 0,
        kind: 'delegate',
        activity_ids: [],
        to: acct.address,
        data: '0x',
        authorization_list: [auth],
        gas_limit: '100000',
        hashes: [keccak256(raw)],
      },
      fees,
      0,
    );
    const { m, events } = mk({ store, urls: [anvil.url], key: acct.privateKey });
    await m.start();
    const resumed = m.delegation();
    expect(resumed).toBeDefined();
    const next = m.submit({ kind: 'claim', activityIds: ['7100'], to: sink(), data: '0x' });
    expect(await resumed).toMatchObject({ ok: true, nonce: 0 });
    expect((await codeOf(acct.address)).toLowerCase()).toBe(designatorFor(BATCH_EXECUTOR.address));
    const r = await next;
    expect(r.ok && r.nonce).toBe(2);
    await waitFor('the next tx confirms', () => confirmed(events).some((e) => e.nonce === 2));
    expect(await nonceOf(anvil, acct.address)).toBe(3);
    // No noop took the authorization's nonce, nothing was foreign, nothing failed.
    expect(store.has(laneKey(1))).toBe(false);
    expect(events.some((e) => e.type === 'foreignTx' || e.type === 'failed')).toBe(false);
    expect(await readDelegation(testTransport(anvil.url), acct.address)).toEqual({ kind: 'pinned' });
    await m.stop();
  }, 30_000);
});
