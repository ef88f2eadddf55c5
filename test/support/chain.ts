/**
 * Chain-truth readers shared by the end-to-end tests: raw JSON-RPC batches against anvil, every TaskQueue event with
 * its block timestamp, `getActivity` views, the head block number. No daemon code: what the tests check wcp against.
 */
import { Interface } from 'ethers';
import { TASK_QUEUE_ABI, WORKFLOW_ENGINE_ABI } from '../../src/chain/abi.ts';
import type { Stack } from '../../scripts/lib/deploy.ts';

export const tqIface = new Interface(TASK_QUEUE_ABI);
export const wfIface = new Interface(WORKFLOW_ENGINE_ABI);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** JSON-RPC batch (chunks of 100); throws on any error. */
export async function rpcBatch<T>(url: string, calls: Array<[string, unknown[]]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < calls.length; i += 100) {
    const chunk = calls.slice(i, i + 100);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chunk.map(([method, params], j) => ({ jsonrpc: '2.0', id: j, method, params }))),
    });
    const body = (await res.json()) as Array<{ id: number; result?: T; error?: { message: string } }>;
    body.sort((a, b) => a.id - b.id);
    for (const r of body) {
      if (r.error) throw new Error(`rpc batch: ${r.error.message}`);
      out.push(r.result as T);
    }
  }
  return out;
}

export const blockNumber = async (url: string) => Number(BigInt((await rpcBatch<string>(url, [['eth_blockNumber', []]]))[0] as string));

export interface QueueEvent {
  name: string;
  activityId: string;
  worker: string;
  blockNumber: number;
  timestamp: number;
  txHash: string;
}

/** Every TaskQueue event of the canonical chain from `fromBlock` (decoded), with its block timestamp. */
export async function queueEvents(url: string, taskQueue: string, fromBlock = 0): Promise<QueueEvent[]> {
  const [logs] = await rpcBatch<Array<{ topics: string[]; data: string; blockNumber: string; transactionHash: string }>>(url, [
    ['eth_getLogs', [{ address: taskQueue, fromBlock: `0x${fromBlock.toString(16)}`, toBlock: 'latest' }]],
  ]);
  const blockNums = [...new Set((logs ?? []).map((l) => l.blockNumber))];
  const blocks = await rpcBatch<{ number: string; timestamp: string }>(url, blockNums.map((n) => ['eth_getBlockByNumber', [n, false]] as [string, unknown[]]));
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

/** `getActivity` for each id. */
export async function activityViews(stack: Stack, ids: string[]): Promise<ActivityView[]> {
  const out: ActivityView[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    out.push(...((await Promise.all(ids.slice(i, i + 50).map((id) => stack.contracts.taskQueue.getFunction('getActivity')(id)))) as ActivityView[]));
  }
  return out;
}
