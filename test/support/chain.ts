/**
 * Chain truth for the end-to-end tests: every TaskQueue event with its block timestamp, `getActivity` views, the
 * transactions a wallet sent (with receipts, or decoded into TaskQueue calls). No daemon code: what the tests check
 * wcp against. Raw JSON-RPC comes from `scripts/lib/rpc.ts`.
 */
import { AbiCoder, type Interface } from 'ethers';
import type { Stack } from '../../scripts/lib/deploy.ts';
import { blockNumber, rpcBatch } from '../../scripts/lib/rpc.ts';
import { taskQueueIface, workflowEngineIface } from '../../src/chain/abi.ts';
import { batchExecutorIface, tryExecuteFailures } from '../../src/chain/batch-executor.ts';

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
  /**
   * The calls the transaction made: itself for a plain one; for a batch (EIP-7702: a call from the wallet to itself
   * running the batch executor's `execute`), each call of the batch, failed when the executor reported it
   * (`ERC7579TryExecuteFail`) or the whole transaction reverted.
   */
  calls: ChainCall[];
}

/** One call of a wallet's transaction (addresses lower-case). */
export interface ChainCall {
  to: string;
  input: string;
  ok: boolean;
}

/** The calls of a mined transaction (see `ChainTx.calls`). */
export function callsOfTx(t: Pick<ChainTx, 'from' | 'to' | 'input' | 'status' | 'logs'>): ChainCall[] {
  const self = t.to.toLowerCase() === t.from.toLowerCase();
  let batch: Array<[string, bigint, string]> | null = null;
  if (self && t.input !== '0x') {
    try {
      const p = batchExecutorIface.parseTransaction({ data: t.input });
      if (p?.name === 'execute')
        batch = AbiCoder.defaultAbiCoder().decode(['tuple(address,uint256,bytes)[]'], p.args[1] as string)[0] as Array<
          [string, bigint, string]
        >;
    } catch {
      batch = null;
    }
  }
  if (!batch) return [{ to: t.to.toLowerCase(), input: t.input, ok: t.status === 1 }];
  const failed = tryExecuteFailures(t.logs, t.from);
  return batch.map(([to, , input], i) => ({ to: to.toLowerCase(), input, ok: t.status === 1 && !failed.has(i) }));
}

/** One call of a wallet's transactions, decoded: its tx's nonce, block and time, the function and the ids it names. */
export interface DecodedCall {
  nonce: number;
  blockNumber: number;
  timestamp: number;
  to: string;
  ok: boolean;
  fn: string;
  ids: string[];
  gasUsed: bigint;
  effectiveGasPrice: bigint;
  /** Calls in its transaction (a batch's gas is shared by its calls). */
  siblings: number;
}

/** Every call of `txs`, in order, decoded (`idsOfCall`). */
export function decodedCalls(txs: ChainTx[]): DecodedCall[] {
  return txs.flatMap((t) =>
    t.calls.map((c) => ({
      nonce: t.nonce,
      blockNumber: t.blockNumber,
      timestamp: t.timestamp,
      to: c.to,
      ok: c.ok,
      ...idsOfCall(c.input),
      gasUsed: t.gasUsed,
      effectiveGasPrice: t.effectiveGasPrice,
      siblings: t.calls.length,
    })),
  );
}

/** The calls of `txs` that failed (reverted, or reported failed inside a batch): `fn(ids)#nonce@block`. */
export function failedCalls(txs: ChainTx[]): string[] {
  return decodedCalls(txs)
    .filter((c) => !c.ok)
    .map((c) => `${c.fn}(${c.ids.join(',')})#${c.nonce}@${c.blockNumber}`);
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
    const tx = {
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
    };
    out.get(t.from.toLowerCase())?.push({ ...tx, calls: callsOfTx(tx) });
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
      if (t.from.toLowerCase() !== from.toLowerCase()) continue;
      // A batch's calls count one by one (their outcome is not read here: no receipt).
      for (const c of callsOfTx({ from: t.from, to: t.to ?? '', input: t.input, status: 1, logs: [] })) {
        if (c.to !== taskQueue.toLowerCase()) continue;
        const call = idsOfCall(c.input);
        if (call.fn !== '') out.push({ blockNumber: Number(BigInt(b.number)), ...call });
      }
    }
  }
  return out;
}
