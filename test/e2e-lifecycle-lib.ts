/**
 * Shared helpers of the lifecycle end-to-end tests (`e2e-lifecycle*.test.ts`): the env that makes the compiled
 * binary fast against anvil with short blocks, and readers of chain truth (every transaction a wallet sent, with
 * its receipt; TaskQueue events with block timestamps; activity views) and of the store (lane records, done).
 */
import { expect } from 'bun:test';
import { existsSync } from 'node:fs';
import { type Interface, Transaction } from 'ethers';
import { rpcBatch, tqIface } from './support/chain.ts';
import { type Sandbox, until, wcpScan } from './support/wcp.ts';

export { activityViews, type QueueEvent, queueEvents, rpcBatch, sleep, tqIface, wfIface } from './support/chain.ts';

/** Env for `wcp run` with the no-op test executor and short intervals. `extra` wins. */
export function lifecycleEnv(rpcUrl: string, key: string, queue: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ENVIRONMENT: 'local',
    WCP__ETHEREUM__RPC_URL: rpcUrl,
    WCP__ETHEREUM__WALLET_PRIVATE_KEY: key,
    WCP__ETHEREUM__WALLET_ADDRESS: '',
    WCP__METRICS__ENABLED: 'false',
    WCP__SCHEDULER__QUEUE_NAME: queue,
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
    ...extra,
  };
}

// ------------------------------------------------------------------------------------------------ raw rpc


export interface ChainTx {
  hash: string;
  from: string;
  to: string;
  nonce: number;
  input: string;
  blockNumber: number;
  timestamp: number;
  status: number;
  gasUsed: bigint;
  effectiveGasPrice: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  logs: Array<{ address: string; topics: string[]; data: string }>;
}

interface RawBlock {
  number: string;
  timestamp: string;
  transactions: Array<{ hash: string; from: string; to: string | null; nonce: string; input: string; maxFeePerGas?: string; maxPriorityFeePerGas?: string }>;
}
interface RawReceipt {
  transactionHash: string;
  status: string;
  gasUsed: string;
  effectiveGasPrice: string;
  logs: Array<{ address: string; topics: string[]; data: string }>;
}

/** Every mined transaction from `addresses` (lower-case keys), with receipts, in block order. */
export async function walletTxs(url: string, addresses: string[]): Promise<Map<string, ChainTx[]>> {
  const want = new Set(addresses.map((a) => a.toLowerCase()));
  const head = Number(BigInt((await rpcBatch<string>(url, [['eth_blockNumber', []]]))[0] as string));
  const blocks = await rpcBatch<RawBlock>(url, Array.from({ length: head + 1 }, (_, n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, true]] as [string, unknown[]]));
  const picked: Array<{ b: RawBlock; t: RawBlock['transactions'][number] }> = [];
  for (const b of blocks) for (const t of b.transactions) if (want.has(t.from.toLowerCase())) picked.push({ b, t });
  const receipts = await rpcBatch<RawReceipt>(url, picked.map(({ t }) => ['eth_getTransactionReceipt', [t.hash]] as [string, unknown[]]));
  const out = new Map<string, ChainTx[]>([...want].map((a) => [a, []]));
  picked.forEach(({ b, t }, i) => {
    const r = receipts[i] as RawReceipt;
    out.get(t.from.toLowerCase())?.push({
      hash: t.hash,
      from: t.from.toLowerCase(),
      to: (t.to ?? '').toLowerCase(),
      nonce: Number(BigInt(t.nonce)),
      input: t.input,
      blockNumber: Number(BigInt(b.number)),
      timestamp: Number(BigInt(b.timestamp)),
      status: Number(BigInt(r.status)),
      gasUsed: BigInt(r.gasUsed),
      effectiveGasPrice: BigInt(r.effectiveGasPrice),
      maxFeePerGas: BigInt(t.maxFeePerGas ?? 0),
      maxPriorityFeePerGas: BigInt(t.maxPriorityFeePerGas ?? 0),
      logs: r.logs,
    });
  });
  return out;
}

export function countBy<T>(xs: T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

/** Activity ids passed to a claim / claim_batch / heartbeat call. */
export function idsOfCall(input: string): { fn: string; ids: string[] } {
  let p: ReturnType<Interface['parseTransaction']> = null;
  try {
    p = tqIface.parseTransaction({ data: input });
  } catch {
    p = null;
  }
  if (!p) return { fn: '', ids: [] };
  const a = p.args[0];
  return { fn: p.name, ids: Array.isArray(a) || (a && typeof a === 'object' && 'length' in a) ? [...(a as bigint[])].map(String) : [String(a)] };
}

// ------------------------------------------------------------------------------------------------ store

export interface LaneRec {
  nonce: number;
  kind: string;
  state: string;
  activity_ids: string[];
  hashes: string[];
  mined_hash?: string;
  receipt_status?: number;
  attempts: number;
  max_fee_per_gas: string;
  max_priority_fee_per_gas: string;
}

/** `wcpScan`, or nothing before wcp has created its store. */
export const scan = (sb: Sandbox, prefix: string) => (existsSync(sb.dbPath) ? wcpScan(sb, prefix) : []);
export const laneRecords = (sb: Sandbox) => scan(sb, 'lane:').map((e) => e.value as unknown as LaneRec);
export const doneRecords = (sb: Sandbox) => scan(sb, 'done:').map((e) => e.value as { activity_id: string; outcome: string; resumed?: boolean; reason?: string });

/** Waits until `n` done records exist (and nothing is held); returns them. */
export async function waitDone(sb: Sandbox, n: number, timeoutMs: number, alive?: () => void) {
  return await until(
    () => {
      alive?.();
      return { done: doneRecords(sb).length, held: scan(sb, 'inflight:').length };
    },
    (s) => s.done >= n && s.held === 0,
    timeoutMs,
    `${n} done records`,
  );
}

/**
 * The lane agrees with the chain: the wallet's chain nonce equals the number of lane records, the records hold
 * nonces 0..N-1, every record is confirmed with the hash the chain mined at that nonce, and every mined tx of the
 * wallet is one of the hashes recorded for its nonce. Returns the wallet's mined txs.
 */
export async function expectLaneMatchesChain(sb: Sandbox, url: string, address: string): Promise<ChainTx[]> {
  const recs = laneRecords(sb);
  const chainNonce = Number(BigInt((await rpcBatch<string>(url, [['eth_getTransactionCount', [address, 'latest']]]))[0] as string));
  const pendingNonce = Number(BigInt((await rpcBatch<string>(url, [['eth_getTransactionCount', [address, 'pending']]]))[0] as string));
  expect(pendingNonce).toBe(chainNonce);
  expect(recs.length).toBe(chainNonce);
  expect(recs.map((r) => r.nonce)).toEqual(Array.from({ length: chainNonce }, (_, i) => i));
  const txs = (await walletTxs(url, [address])).get(address.toLowerCase()) ?? [];
  expect(txs.length).toBe(chainNonce);
  const byNonce = countBy(txs, (t) => String(t.nonce));
  expect([...byNonce.values()].every((c) => c === 1)).toBe(true);
  for (const t of txs) {
    const r = recs[t.nonce] as LaneRec;
    expect({ nonce: t.nonce, state: r.state, mined: r.mined_hash }).toEqual({ nonce: t.nonce, state: 'confirmed', mined: t.hash });
    expect(r.hashes).toContain(t.hash);
  }
  return txs;
}

/** Raw transactions a proxy saw for `eth_sendRawTransaction`, decoded, grouped by nonce in send order. */
export function sentByNonce(raws: string[]): Map<number, Array<{ hash: string; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }>> {
  const out = new Map<number, Array<{ hash: string; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }>>();
  for (const raw of raws) {
    const t = Transaction.from(raw);
    const list = out.get(t.nonce) ?? [];
    if (!list.some((x) => x.hash === t.hash)) list.push({ hash: t.hash as string, maxFeePerGas: t.maxFeePerGas ?? 0n, maxPriorityFeePerGas: t.maxPriorityFeePerGas ?? 0n });
    out.set(t.nonce, list);
  }
  return out;
}

