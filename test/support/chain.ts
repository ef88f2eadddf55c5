/**
 * Chain truth for the end-to-end tests: every TaskQueue event with its block timestamp, `getActivity` views, the
 * transactions a wallet sent (with receipts, or decoded into TaskQueue calls). No daemon code: what the tests check
 * wcp against. Raw JSON-RPC comes from `scripts/lib/rpc.ts`.
 */
import type { Interface } from 'ethers';
import type { Stack } from '../../scripts/lib/deploy.ts';
import { blockNumber, rpcBatch } from '../../scripts/lib/rpc.ts';
import { taskQueueIface, workflowEngineIface } from '../../src/chain/abi.ts';

export { blockNumber, rpcBatch } from '../../scripts/lib/rpc.ts';

/** The TaskQueue interface, to decode its events and calls and encode calls. */
export const tqIface = taskQueueIface;
/** The WorkflowEngine interface. */
export const wfIface = workflowEngineIface;

/** A decoded TaskQueue event of the canonical chain. */
export interface QueueEvent {
  name: string;
  activityId: string;
  /** Lower-case; '' for events without a worker. */
  worker: string;
  blockNumber: number;
  timestamp: number;
  txHash: string;
}

type RawLog = { topics: string[]; data: string; blockNumber: string; transactionHash: string };

/** Every TaskQueue event of the canonical chain from `fromBlock` (decoded), with its block timestamp. */
export async function queueEvents(url: string, taskQueue: string, fromBlock = 0): Promise<QueueEvent[]> {
  const [logs] = await rpcBatch<RawLog[]>(url, [
    ['eth_getLogs', [{ address: taskQueue, fromBlock: `0x${fromBlock.toString(16)}`, toBlock: 'latest' }]],
  ]);
  const blockNums = [...new Set((logs ?? []).map((l) => l.blockNumber))];
  const blocks = await rpcBatch<{ number: string; timestamp: string }>(
    url,
    blockNums.map((n) => ['eth_getBlockByNumber', [n, false]] as [string, unknown[]]),
  );
  const ts = new Map(blocks.map((b) => [b.number, Number(BigInt(b.timestamp))]));
  const out: QueueEvent[] = [];
  for (const l of logs ?? []) {
    const p = tqIface.parseLog({ topics: l.topics, data: l.data });
    if (!p) continue;
    out.push({
      name: p.name,
      activityId: (p.args.activityId as bigint).toString(),
      worker: String(p.args.worker ?? '').toLowerCase(),
      blockNumber: Number(BigInt(l.blockNumber)),
      timestamp: ts.get(l.blockNumber) ?? 0,
      txHash: l.transactionHash,
    });
  }
  return out;
}

/** `getActivity` as ethers decodes it (status 1 Pending, 2 Claimed, 3 Completed, 4 Failed). */
export interface ActivityView {
  id: bigint;
  status: bigint;
  worker: string;
  isCompleted: boolean;
  isExpired: boolean;
  workflowInstance: bigint;
  stepIndex: bigint;
  resultRef: string;
}

/** `getActivity` for each id, in order (50 calls at a time). */
export async function activityViews(stack: Stack, ids: string[]): Promise<ActivityView[]> {
  const get = stack.contracts.taskQueue.getFunction('getActivity');
  const out: ActivityView[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    out.push(...((await Promise.all(ids.slice(i, i + 50).map((id) => get(id)))) as ActivityView[]));
  }
  return out;
}

/** A mined transaction with its receipt; addresses lower-case. */
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

type RawTx = {
  hash: string;
  from: string;
  to: string | null;
  nonce: string;
  input: string;
  maxFeePerGas?: string;
  maxPriorityFeePerGas?: string;
};
type RawBlock = { number: string; timestamp: string; transactions: RawTx[] };
type RawReceipt = {
  status: string;
  gasUsed: string;
  effectiveGasPrice: string;
  logs: Array<{ address: string; topics: string[]; data: string }>;
};

/** The blocks `from..to` (inclusive) with their full transactions. */
async function blocksWithTxs(url: string, from: number, to: number): Promise<RawBlock[]> {
  const nums = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  return await rpcBatch<RawBlock>(
    url,
    nums.map((n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, true]]),
  );
}

/** Every mined transaction from `addresses` (lower-case keys), with receipts, in block order. */
export async function walletTxs(url: string, addresses: string[]): Promise<Map<string, ChainTx[]>> {
  const want = new Set(addresses.map((a) => a.toLowerCase()));
  const blocks = await blocksWithTxs(url, 0, await blockNumber(url));
  const picked: Array<{ b: RawBlock; t: RawTx }> = [];
  for (const b of blocks) for (const t of b.transactions) if (want.has(t.from.toLowerCase())) picked.push({ b, t });
  const receipts = await rpcBatch<RawReceipt>(
    url,
    picked.map(({ t }) => ['eth_getTransactionReceipt', [t.hash]]),
  );
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

/** The TaskQueue function a call data invokes and the activity ids it names; `fn` is '' when it is not one. */
export function idsOfCall(input: string): { fn: string; ids: string[] } {
  let p: ReturnType<Interface['parseTransaction']> = null;
  try {
    p = tqIface.parseTransaction({ data: input });
  } catch {
    p = null;
  }
  if (!p) return { fn: '', ids: [] };
  const a = p.args[0];
  const list = Array.isArray(a) || (a && typeof a === 'object' && 'length' in a);
  return { fn: p.name, ids: list ? [...(a as bigint[])].map(String) : [String(a)] };
}

/** The TaskQueue functions that claim. */
export const CLAIM_FNS = new Set(['claimActivity', 'claimActivities']);

/** A TaskQueue call a wallet sent: the block it was mined in, the function and the activity ids. */
export interface WalletCall {
  blockNumber: number;
  fn: string;
  ids: string[];
}

/** TaskQueue calls sent by `from` in blocks [fromBlock, latest], decoded. */
export async function walletCalls(
  url: string,
  from: string,
  taskQueue: string,
  fromBlock: number,
): Promise<WalletCall[]> {
  const blocks = await blocksWithTxs(url, fromBlock, await blockNumber(url));
  const out: WalletCall[] = [];
  for (const b of blocks) {
    for (const t of b?.transactions ?? []) {
      if (t.from.toLowerCase() !== from.toLowerCase() || t.to?.toLowerCase() !== taskQueue.toLowerCase()) continue;
      const call = idsOfCall(t.input);
      if (call.fn !== '') out.push({ blockNumber: Number(BigInt(b.number)), ...call });
    }
  }
  return out;
}
