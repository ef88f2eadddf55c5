/**
 * Typed chain reads over an `RpcTransport`, for the reconciler, the lifecycle and the poller alike: block
 * headers, and `getActivity` / `getWorkflow` / `getWorkerActivities` pinned to one block, batched through
 * Multicall3 `aggregate3` (allowFailure: a failing sub-call is reported, never hides the others). Chain data is
 * untrusted: decoded values are range-checked (`values.ts`).
 */
import { WcpError } from '../internal/errors.ts';
import { ActivityStatus, type ActivityStatusCode, multicallIface, taskQueueIface, workflowEngineIface } from './abi.ts';
import { decodeResult, encodeCall } from './abi-fast.ts';
import {
  type ActivityFact,
  type ActivityTuple,
  resumedPastStep,
  type WorkflowEvidence,
  type WorkflowFact,
} from './facts.ts';
import { RpcError, toHex } from './rpc-error.ts';
import type { RpcTransport } from './transport.ts';
import { chainText as text, chainUint as num } from './values.ts';

/** A block tag: a number, or the node's latest block. */
export type BlockTag = number | 'latest';

/** Sub-calls per `aggregate3` when the caller does not say. */
export const MULTICALL_CHUNK = 100;

export interface BlockHeader {
  number: number;
  hash: string;
  parentHash: string;
  /** Seconds. */
  timestamp: number;
}

/** `eth_getBlockByNumber(tag, false)`; a missing block is a retryable error (the node may lag). */
export async function getHeader(rpc: RpcTransport, tag: number | 'latest'): Promise<BlockHeader> {
  const b = await rpc.request<{ number: string; hash: string; parentHash: string; timestamp: string } | null>(
    'eth_getBlockByNumber',
    [typeof tag === 'number' ? toHex(tag) : tag, false],
  );
  if (!b) throw new RpcError('rpc', 'eth_getBlockByNumber', `block ${tag} not found`, { retryable: true });
  return {
    number: Number(BigInt(b.number)),
    hash: b.hash.toLowerCase(),
    parentHash: b.parentHash.toLowerCase(),
    timestamp: Number(BigInt(b.timestamp)),
  };
}

/** `eth_call` at a block. */
export async function ethCall(rpc: RpcTransport, to: string, data: string, block: BlockTag): Promise<string> {
  return await rpc.request<string>('eth_call', [{ to, data }, block === 'latest' ? block : toHex(block)]);
}

export interface SubCall {
  target: string;
  callData: string;
}

/** Multicall3 aggregate3 with allowFailure, in chunks of `chunk` sub-calls, all at `block`. */
export async function multicall(
  rpc: RpcTransport,
  multicall3: string,
  calls: SubCall[],
  block: BlockTag,
  chunk = MULTICALL_CHUNK,
): Promise<Array<{ success: boolean; returnData: string }>> {
  return await prepareMulticall(multicall3, calls, chunk)(rpc, block);
}

/**
 * A multicall encoded once, to be asked again and again (the poller's: the same sub-calls every round): ethers'
 * ABI encoding of the sub-calls and the aggregate costs several times the eth_call itself on a local node, so a
 * round that re-encoded them would spend most of its time encoding.
 */
export function prepareMulticall(
  multicall3: string,
  calls: SubCall[],
  chunk = MULTICALL_CHUNK,
): (rpc: RpcTransport, block: BlockTag) => Promise<Array<{ success: boolean; returnData: string }>> {
  const parts: Array<{ data: string; count: number }> = [];
  for (let i = 0; i < calls.length; i += chunk) {
    const part = calls.slice(i, i + chunk).map((c) => ({ ...c, allowFailure: true }));
    parts.push({ data: encodeCall(multicallIface, 'aggregate3', [part]), count: part.length });
  }
  return async (rpc, block) => {
    const out: Array<{ success: boolean; returnData: string }> = [];
    for (const { data, count } of parts) {
      const ret = await ethCall(rpc, multicall3, data, block);
      if (ret === '0x') throw new WcpError('CHAIN_BAD_DATA', `no Multicall3 contract at ${multicall3} (empty reply)`);
      const [results] = decodeResult(multicallIface, 'aggregate3', ret) as [Array<[boolean, string]>];
      if (results.length !== count) {
        throw new WcpError('CHAIN_BAD_DATA', `aggregate3 answered ${results.length} results for ${count} calls`);
      }
      for (const r of results) out.push({ success: Boolean(r[0]), returnData: String(r[1]) });
    }
    return out;
  };
}

/** Decodes `getActivity(requestedId)` return data; checks the id and the status code. */
function decodeActivity(requestedId: string, returnData: string): ActivityTuple {
  const [t] = decodeResult(taskQueueIface, 'getActivity', returnData) as [unknown[]];
  const status = num('status', t[6]);
  if (status > ActivityStatus.Failed)
    throw new WcpError('CHAIN_BAD_DATA', `getActivity(${requestedId}) returned status ${status}`);
  const id = (t[0] as bigint).toString();
  const exists = status !== ActivityStatus.None;
  if (exists && id !== requestedId)
    throw new WcpError('CHAIN_BAD_DATA', `getActivity(${requestedId}) returned id ${id}`);
  return {
    activityId: requestedId,
    exists,
    queue: text('queue', t[1]),
    workflowInstance: (t[2] as bigint).toString(),
    stepIndex: num('stepIndex', t[3]),
    activityType: text('activityType', t[4]),
    inputRef: text('inputRef', t[5]),
    status: status as ActivityStatusCode,
    worker: String(t[7]).toLowerCase(),
    enqueuedAtS: num('enqueuedAt', t[8]),
    claimedAtS: num('claimedAt', t[9]),
    lastHeartbeatAtS: num('lastHeartbeatAt', t[10]),
    heartbeatTimeoutS: num('heartbeatTimeout', t[11]),
    expiresAtS: num('expiresAt', t[12]),
    finishedAtS: num('finishedAt', t[13]),
    isCompleted: Boolean(t[14]),
    isExpired: Boolean(t[15]),
    resultRef: text('resultRef', t[16]),
  };
}

/** Batched `getActivity` at `block`. A reverted sub-call is bad data (getActivity never reverts). */
export async function readActivities(
  rpc: RpcTransport,
  addrs: { taskQueue: string; multicall3: string },
  ids: string[],
  block: number,
  chunk = MULTICALL_CHUNK,
): Promise<ActivityTuple[]> {
  const calls = ids.map((id) => ({
    target: addrs.taskQueue,
    callData: encodeCall(taskQueueIface, 'getActivity', [id]),
  }));
  const results = await multicall(rpc, addrs.multicall3, calls, block, chunk);
  return results.map((r, i) => {
    const id = ids[i] as string;
    if (!r.success || r.returnData === '0x') throw new WcpError('CHAIN_BAD_DATA', `getActivity(${id}) failed on chain`);
    return decodeActivity(id, r.returnData);
  });
}

/** Batched `getWorkflow` at `block`; a failed sub-call yields undefined for that instance. */
export async function readWorkflows(
  rpc: RpcTransport,
  addrs: { workflowEngine: string; multicall3: string },
  instanceIds: string[],
  block: number,
): Promise<Map<string, WorkflowFact>> {
  const calls = instanceIds.map((id) => ({
    target: addrs.workflowEngine,
    callData: encodeCall(workflowEngineIface, 'getWorkflow', [id]),
  }));
  const results = await multicall(rpc, addrs.multicall3, calls, block);
  const out = new Map<string, WorkflowFact>();
  results.forEach((r, i) => {
    const id = instanceIds[i] as string;
    if (!r.success || r.returnData === '0x') return;
    const [t] = decodeResult(workflowEngineIface, 'getWorkflow', r.returnData) as [unknown[]];
    out.set(id, {
      instanceId: id,
      status: num('workflow status', t[6]),
      currentStep: num('currentStep', t[3]),
      stepCount: num('stepCount', t[4]),
      currentActivityId: (t[5] as bigint).toString(),
    });
  });
  return out;
}

/** `getWorkerActivities(wallet)` at `block`: the wallet's Claimed, unfinished activities (expired included). */
export async function readWorkerActivities(
  rpc: RpcTransport,
  taskQueue: string,
  wallet: string,
  block: number,
): Promise<string[]> {
  const ret = await ethCall(rpc, taskQueue, encodeCall(taskQueueIface, 'getWorkerActivities', [wallet]), block);
  if (ret === '0x') throw new WcpError('CHAIN_BAD_DATA', `no TaskQueue contract at ${taskQueue} (empty reply)`);
  const [ids] = decodeResult(taskQueueIface, 'getWorkerActivities', ret) as [bigint[]];
  return ids.map((x) => x.toString());
}

/**
 * Chain truth for `ids` at `head`: each activity, plus, for a Completed workflow step, its workflow and whether
 * the workflow moved past that step. `evidence`, when given, adds event evidence for those instances (the
 * reconciler's scan); without it the engine's state alone decides.
 */
export async function readFactsAt(
  rpc: RpcTransport,
  addrs: { taskQueue: string; workflowEngine: string; multicall3: string },
  ids: string[],
  head: { number: number; timestamp: number },
  evidence?: (instances: string[]) => Promise<Map<string, WorkflowEvidence>>,
): Promise<ActivityFact[]> {
  const tuples = await readActivities(rpc, addrs, ids, head.number);
  const facts: ActivityFact[] = tuples.map((t) => ({ ...t, nowS: head.timestamp, blockNumber: head.number }));
  const isWorkflowStepDone = (f: ActivityFact) => f.status === ActivityStatus.Completed && f.workflowInstance !== '0';
  const instances = [...new Set(facts.filter(isWorkflowStepDone).map((f) => f.workflowInstance))];
  if (instances.length === 0) return facts;
  const workflows = await readWorkflows(rpc, addrs, instances, head.number);
  const events = evidence ? await evidence(instances) : undefined;
  for (const f of facts) {
    if (!isWorkflowStepDone(f)) continue;
    const wf = workflows.get(f.workflowInstance);
    if (wf) f.workflow = wf;
    const past = resumedPastStep(f, wf, events?.get(f.workflowInstance));
    if (past !== undefined) f.workflowResumedPastStep = past;
  }
  return facts;
}

/** `readFactsAt` the latest block (engine state only). */
export async function readFacts(
  rpc: RpcTransport,
  addrs: { taskQueue: string; workflowEngine: string; multicall3: string },
  ids: string[],
): Promise<ActivityFact[]> {
  return await readFactsAt(rpc, addrs, ids, await getHeader(rpc, 'latest'));
}
