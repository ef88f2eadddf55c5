/**
 * The reference contracts on a real anvil: ABI conformance with src/chain/abi.ts, and the TaskQueue,
 * SubnetControlPlane, WorkflowEngine and Multicall3 semantics the daemon relies on. Also records the gas used
 * by the worker-side calls (printed at the end) so batching decisions can be made from real receipts.
 *
 * Every test uses its own queue name, so time travel (`evm_increaseTime`) in one test cannot change what
 * another test polls.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Contract, Interface, type TransactionReceipt, Wallet, id as keccakUtf8, keccak256 } from 'ethers';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import {
  ANVIL_DEFAULT_ADDRESSES,
  type LaneSigner,
  type Stack,
  deployBatchExecutor,
  deployStack,
  enqueueActivities,
  eventArgs,
  laneSigner,
  registerWorker,
  startWorkflows,
  waitForReceipts,
} from '../scripts/lib/deploy.ts';
import {
  ActivityStatus,
  MULTICALL3_ABI,
  SUBNET_CONTROL_PLANE_ABI,
  TASK_QUEUE_ABI,
  WORKFLOW_ENGINE_ABI,
  WorkflowStatus,
} from '../src/chain/abi.ts';
import {
  BATCH_EXECUTOR,
  type BatchCall,
  MODE_BATCH_DEFAULT,
  MODE_BATCH_TRY,
  batchExecutorIface,
  decodeSimulate,
  designatorFor,
  encodeExecute,
  encodeSimulate,
  readDelegation,
  tryExecuteFailures,
} from '../src/chain/batch-executor.ts';
import { BATCH_EXECUTOR_CODE } from '../src/chain/batch-executor-code.ts';
import { artifactSource } from '../scripts/gen-batch-executor.ts';
import { readFileSync } from 'node:fs';
import { testTransport } from './support/transport.ts';

let anvil: Anvil;
let stack: Stack;
/** Registered, active workers (anvil accounts 1–5). */
let workers: LaneSigner[];
/** Never registered (anvil account 6). */
let stranger: LaneSigner;
const gas: { label: string; gas: number }[] = [];

const HEARTBEAT_TIMEOUT_S = 60;
const LIFETIME_S = 10_800;

beforeAll(async () => {
  anvil = await startAnvil();
  stack = await deployStack({
    rpcUrl: anvil.url,
    deployerKey: key(0),
    heartbeatTimeoutS: HEARTBEAT_TIMEOUT_S,
    lifetimeS: LIFETIME_S,
    // The executor's deployment is a test of its own below.
    batchExecutor: false,
  });
  workers = [1, 2, 3, 4, 5].map((i) => laneSigner(key(i), stack.provider));
  stranger = laneSigner(key(6), stack.provider);
  for (const w of workers) await registerWorker(stack, await w.getAddress(), 4);
}, 120_000);

afterAll(async () => {
  if (gas.length > 0) {
    const width = Math.max(...gas.map((g) => g.label.length));
    console.log(`\ngas used (receipts):\n${gas.map((g) => `  ${g.label.padEnd(width)}  ${g.gas}`).join('\n')}`);
  }
  stack?.destroy();
  await anvil?.stop();
}, 60_000);

// ------------------------------------------------------------------------------------------------ helpers

function key(i: number): string {
  const acct = anvil.accounts[i];
  if (!acct) throw new Error(`no anvil account ${i}`);
  return acct.privateKey;
}

function addr(i: number): string {
  const acct = anvil.accounts[i];
  if (!acct) throw new Error(`no anvil account ${i}`);
  return acct.address;
}

function worker(i: number): LaneSigner {
  const w = workers[i];
  if (!w) throw new Error(`no worker ${i}`);
  return w;
}

function tqAs(signer: LaneSigner): Contract {
  return new Contract(stack.addresses.taskQueue, stack.compiled.TaskQueue.abi as never, signer);
}

function cpAs(signer: LaneSigner): Contract {
  return new Contract(stack.addresses.subnetControlPlane, stack.compiled.SubnetControlPlane.abi as never, signer);
}

function wfAs(signer: LaneSigner): Contract {
  return new Contract(stack.addresses.workflowEngine, stack.compiled.WorkflowEngine.abi as never, signer);
}

/** Sends `fn(...args)` and waits for a successful receipt. */
async function send(c: Contract, fn: string, ...args: unknown[]): Promise<TransactionReceipt> {
  const tx = await c.getFunction(fn).send(...args);
  const [r] = await waitForReceipts(stack.provider, [tx.hash]);
  if (r?.status !== 1) {
    throw new Error(`${fn} reverted in block ${r?.blockNumber} (gas used ${r?.gasUsed} of ${tx.gasLimit})`);
  }
  return r;
}

async function view<T = unknown>(c: Contract, fn: string, ...args: unknown[]): Promise<T> {
  return (await c.getFunction(fn).staticCall(...args)) as T;
}

const decoders = () => [
  new Interface(stack.compiled.TaskQueue.abi as never),
  new Interface(stack.compiled.SubnetControlPlane.abi as never),
  new Interface(stack.compiled.WorkflowEngine.abi as never),
];

function revertData(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  const walk = (v: unknown, depth: number): string | undefined => {
    if (!v || typeof v !== 'object' || depth > 4 || seen.has(v)) return undefined;
    seen.add(v);
    const o = v as Record<string, unknown>;
    if (typeof o.data === 'string' && /^0x[0-9a-f]{8}/i.test(o.data)) return o.data;
    for (const k of ['error', 'info', 'cause']) {
      const found = walk(o[k], depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  return walk(e, 0);
}

/** Asserts that `p` reverts with custom error `name` (and `args`, when given). */
async function expectRevert(p: Promise<unknown>, name: string, args?: unknown[]): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error(`expected a revert with ${name}, but the call succeeded`);
  const data = revertData(err);
  if (!data) throw new Error(`expected ${name}, got an error without revert data: ${String(err)}`);
  for (const iface of decoders()) {
    const parsed = iface.parseError(data);
    if (!parsed) continue;
    expect(parsed.name).toBe(name);
    if (args) expect([...parsed.args]).toEqual(args);
    return;
  }
  throw new Error(`expected ${name}, got undecodable revert data ${data}`);
}

/** Moves chain time forward by `seconds` and mines a block, so views see the new time. */
async function travel(seconds: number): Promise<void> {
  await anvil.rpc('evm_increaseTime', [seconds]);
  await anvil.mine(1);
}

interface ActivityView {
  id: bigint;
  queue: string;
  workflowInstance: bigint;
  stepIndex: bigint;
  activityType: string;
  inputRef: string;
  status: bigint;
  worker: string;
  enqueuedAt: bigint;
  claimedAt: bigint;
  lastHeartbeatAt: bigint;
  heartbeatTimeout: bigint;
  expiresAt: bigint;
  finishedAt: bigint;
  isCompleted: boolean;
  isExpired: boolean;
  resultRef: string;
}

async function activity(id: bigint): Promise<ActivityView> {
  return await view<ActivityView>(stack.contracts.taskQueue, 'getActivity', id);
}

async function poll(queue: string, offset: number) {
  const r = await view<{
    hasActivity: boolean;
    activityId: bigint;
    activityType: string;
    inputRef: string;
    expiresAt: bigint;
  }>(stack.contracts.taskQueue, 'pollActivity', queue, offset);
  return { hasActivity: r.hasActivity, activityId: r.activityId, activityType: r.activityType, inputRef: r.inputRef };
}

async function workerActivities(w: LaneSigner): Promise<bigint[]> {
  const ids = await view<bigint[]>(stack.contracts.taskQueue, 'getWorkerActivities', await w.getAddress());
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function workerStats(w: LaneSigner) {
  const r = await view<{
    registered: boolean;
    active: boolean;
    capacity: bigint;
    claimed: bigint;
    completed: bigint;
    failed: bigint;
  }>(stack.contracts.subnetControlPlane, 'getWorker', await w.getAddress());
  return {
    registered: r.registered,
    active: r.active,
    capacity: Number(r.capacity),
    claimed: Number(r.claimed),
    completed: Number(r.completed),
    failed: Number(r.failed),
  };
}

/** Picks `list[i]` for each index, typed as a tuple of defined ids. */
function ids<N extends number[]>(list: bigint[], ...idx: N): { [K in keyof N]: bigint } {
  return idx.map((i) => at(list, i)) as { [K in keyof N]: bigint };
}

function at<T>(list: readonly T[], i: number): T {
  const v = list[i];
  if (v === undefined) throw new Error(`no element at ${i}`);
  return v;
}

// ------------------------------------------------------------------------------------------------ tests

describe('ABI conformance with src/chain/abi.ts', () => {
  const cases = [
    ['SubnetControlPlane', SUBNET_CONTROL_PLANE_ABI],
    ['TaskQueue', TASK_QUEUE_ABI],
    ['WorkflowEngine', WORKFLOW_ENGINE_ABI],
    ['Multicall3', MULTICALL3_ABI],
  ] as const;
  for (const [name, spec] of cases) {
    test(`${name} implements every fragment with the same full signature`, () => {
      const compiled = new Interface(stack.compiled[name].abi as never);
      const expected = new Interface(spec as unknown as string[]);
      const missing: string[] = [];
      expected.forEachFunction((f) => {
        const got = compiled.getFunction(f.selector);
        if (got?.format('full') !== f.format('full')) missing.push(`${f.format('full')} != ${got?.format('full')}`);
      });
      expected.forEachEvent((ev) => {
        const got = compiled.getEvent(ev.topicHash);
        if (got?.format('full') !== ev.format('full')) missing.push(`${ev.format('full')} != ${got?.format('full')}`);
      });
      expected.forEachError((er) => {
        const got = compiled.getError(er.selector);
        if (got?.format('full') !== er.format('full')) missing.push(`${er.format('full')} != ${got?.format('full')}`);
      });
      expect(missing).toEqual([]);
    });
  }
});

describe('deployment', () => {
  test('lands at the deterministic anvil addresses and is wired', async () => {
    expect(stack.addresses).toEqual({ ...ANVIL_DEFAULT_ADDRESSES });
    const { subnetControlPlane: cp, taskQueue: tq, workflowEngine: wf } = stack.contracts;
    expect(await view(cp, 'owner')).toBe(addr(0));
    expect(await view(cp, 'taskQueue')).toBe(stack.addresses.taskQueue);
    expect(await view(tq, 'owner')).toBe(addr(0));
    expect(await view(tq, 'controlPlane')).toBe(stack.addresses.subnetControlPlane);
    expect(await view(tq, 'defaultHeartbeatTimeout')).toBe(BigInt(HEARTBEAT_TIMEOUT_S));
    expect(await view(tq, 'activityLifetime')).toBe(BigInt(LIFETIME_S));
    expect(await view(tq, 'enqueuers', stack.addresses.workflowEngine)).toBe(true);
    expect(await view(wf, 'taskQueue')).toBe(stack.addresses.taskQueue);
  });
});

describe('SubnetControlPlane', () => {
  test('registration, activation, capacity and owner-only guards', async () => {
    const cp = stack.contracts.subnetControlPlane;
    const who = addr(7);
    expect(await view(cp, 'isWorkerActive', who)).toBe(false);
    await expectRevert(send(cp, 'setWorkerActive', who, true), 'UnknownWorker', [who]);
    await expectRevert(send(cp, 'setWorkerCapacity', who, 3), 'UnknownWorker', [who]);

    await registerWorker(stack, who, 8);
    expect(await view(cp, 'isWorkerActive', who)).toBe(true);
    let w = await view<{ registered: boolean; active: boolean; capacity: bigint }>(cp, 'getWorker', who);
    expect([w.registered, w.active, w.capacity]).toEqual([true, true, 8n]);

    await send(cp, 'setWorkerActive', who, false);
    expect(await view(cp, 'isWorkerActive', who)).toBe(false);
    await send(cp, 'setWorkerCapacity', who, 2);
    w = await view(cp, 'getWorker', who);
    expect([w.registered, w.active, w.capacity]).toEqual([true, false, 2n]);
    await send(cp, 'setWorkerActive', who, true);
    expect(await view(cp, 'isWorkerActive', who)).toBe(true);

    const outsider = cpAs(stranger);
    await expectRevert(send(outsider, 'registerWorker', addr(6), 1), 'NotOwner');
    await expectRevert(send(outsider, 'setWorkerActive', who, false), 'NotOwner');
    await expectRevert(send(outsider, 'setWorkerCapacity', who, 1), 'NotOwner');
    await expectRevert(send(outsider, 'setTaskQueue', addr(6)), 'NotOwner');
    // The counters are only writable by the wired TaskQueue, not even by the owner.
    await expectRevert(send(cp, 'recordClaim', who), 'NotTaskQueue');
    await expectRevert(send(outsider, 'recordCompletion', who), 'NotTaskQueue');
    await expectRevert(send(outsider, 'recordFailure', who), 'NotTaskQueue');
  });

  test('stats count claims, completions and failures per worker', async () => {
    const w = worker(4);
    const before = await workerStats(w);
    const list = await enqueueActivities(stack, { queue: 'stats', count: 4 });
    const tq = tqAs(w);
    await send(tq, 'claimActivities', list);
    await send(tq, 'completeActivity', at(list, 0), 'r0');
    await send(tq, 'completeActivity', at(list, 1), 'r1');
    await send(tq, 'failActivity', at(list, 2), 'boom');
    const after = await workerStats(w);
    expect(after.claimed - before.claimed).toBe(4);
    expect(after.completed - before.completed).toBe(2);
    expect(after.failed - before.failed).toBe(1);
  });
});

describe('TaskQueue enqueue and poll', () => {
  test('enqueue is owner/enqueuer only, rejects an empty queue name, numbers ids from 1 upwards', async () => {
    const tq = stack.contracts.taskQueue;
    await expectRevert(send(tqAs(stranger), 'enqueueActivity', 'q-enq', 0, 0, 'echo', '', 0), 'NotEnqueuer');
    // The owner can allow and revoke enqueuers; others cannot.
    await send(tq, 'setEnqueuer', addr(6), true);
    expect(await view(tq, 'enqueuers', addr(6))).toBe(true);
    await send(tqAs(stranger), 'enqueueActivity', 'q-enq', 0, 0, 'echo', '', 0);
    await send(tq, 'setEnqueuer', addr(6), false);
    await expectRevert(send(tqAs(stranger), 'setEnqueuer', addr(6), true), 'NotOwner');
    await expectRevert(send(tq, 'enqueueActivity', '', 0, 0, 'echo', '', 0), 'EmptyQueueName');

    const countBefore = await view<bigint>(tq, 'activityCount');
    const r = await send(tq, 'enqueueActivity', 'q-enq', 77, 3, 'transcode', 'ipfs://in', 0);
    const [ev] = eventArgs(tq.interface, r.logs, stack.addresses.taskQueue, 'ActivityEnqueued');
    expect(ev).toBeDefined();
    const id = ev?.activityId as bigint;
    expect(id).toBe(countBefore + 1n);
    expect(await view<bigint>(tq, 'activityCount')).toBe(id);
    // queueKey (indexed) is keccak256 of the queue name; workflowInstance is indexed too.
    const log = r.logs.find((l) => l.address === stack.addresses.taskQueue);
    expect(log?.topics[2]).toBe(keccakUtf8('q-enq'));
    expect(ev?.workflowInstance).toBe(77n);
    expect(ev?.queue).toBe('q-enq');
    expect(ev?.activityType).toBe('transcode');
    expect(ev?.stepIndex).toBe(3n);

    const a = await activity(id);
    expect(a.id).toBe(id);
    expect(a.queue).toBe('q-enq');
    expect(a.workflowInstance).toBe(77n);
    expect(a.stepIndex).toBe(3n);
    expect(a.activityType).toBe('transcode');
    expect(a.inputRef).toBe('ipfs://in');
    expect(Number(a.status)).toBe(ActivityStatus.Pending);
    expect(a.heartbeatTimeout).toBe(BigInt(HEARTBEAT_TIMEOUT_S)); // 0 means the default
    expect(a.expiresAt).toBe(a.enqueuedAt + BigInt(LIFETIME_S));
    expect([a.isCompleted, a.isExpired, a.resultRef, a.claimedAt, a.finishedAt]).toEqual([false, false, '', 0n, 0n]);

    const [custom] = await enqueueActivities(stack, { queue: 'q-enq', count: 1, heartbeatTimeoutS: 15 });
    expect((await activity(custom ?? 0n)).heartbeatTimeout).toBe(15n);
    // Unknown ids read as the zero tuple.
    expect((await activity(10n ** 12n)).id).toBe(0n);
  });

  test('pollActivity walks the claimable activities of one queue in enqueue order', async () => {
    const a = await enqueueActivities(stack, { queue: 'poll-a', count: 5, activityType: 'resize', inputRef: 'in-a' });
    const b = await enqueueActivities(stack, { queue: 'poll-b', count: 2 });
    expect(a.every((id, i) => i === 0 || id === (a[i - 1] ?? 0n) + 1n)).toBe(true);
    for (let i = 0; i < 5; i++) {
      expect(await poll('poll-a', i)).toEqual({
        hasActivity: true,
        activityId: at(a, i),
        activityType: 'resize',
        inputRef: 'in-a',
      });
    }
    expect((await poll('poll-a', 5)).hasActivity).toBe(false);
    expect((await poll('poll-b', 1)).activityId).toBe(at(b, 1));
    expect(await poll('no-such-queue', 0)).toEqual({
      hasActivity: false,
      activityId: 0n,
      activityType: '',
      inputRef: '',
    });

    // Claims (at the head and in the middle) drop out of the poll order.
    const tq = tqAs(worker(0));
    await send(tq, 'claimActivity', at(a, 0));
    await send(tq, 'claimActivity', at(a, 2));
    expect((await poll('poll-a', 0)).activityId).toBe(at(a, 1));
    expect((await poll('poll-a', 1)).activityId).toBe(at(a, 3));
    expect((await poll('poll-a', 2)).activityId).toBe(at(a, 4));
    expect((await poll('poll-a', 3)).hasActivity).toBe(false);
    await send(tq, 'claimActivities', ids(a, 1, 3, 4));
    expect((await poll('poll-a', 0)).hasActivity).toBe(false);
    // A later enqueue into a drained queue is found again.
    const [late] = await enqueueActivities(stack, { queue: 'poll-a', count: 1 });
    expect((await poll('poll-a', 0)).activityId).toBe(late ?? -1n);
  });
});

describe('TaskQueue claim', () => {
  test('first claim wins; the loser gets NotClaimable(id, Claimed)', async () => {
    const [id] = await enqueueActivities(stack, { queue: 'race', count: 1 });
    await send(tqAs(worker(0)), 'claimActivity', id);
    await expectRevert(send(tqAs(worker(1)), 'claimActivity', id), 'NotClaimable', [id, 2n]);
    const a = await activity(id ?? 0n);
    expect(Number(a.status)).toBe(ActivityStatus.Claimed);
    expect(a.worker).toBe(await worker(0).getAddress());
    expect(a.claimedAt).toBe(a.lastHeartbeatAt);
    expect(a.expiresAt).toBe(a.claimedAt + BigInt(LIFETIME_S));
  });

  test('two claims in the same block: exactly one succeeds', async () => {
    const [id] = await enqueueActivities(stack, { queue: 'race-block', count: 1 });
    await anvil.rpc('evm_setAutomine', [false]);
    try {
      // Fixed gas limits: both estimates would succeed against the pre-claim state anyway.
      const t1 = await tqAs(worker(0)).getFunction('claimActivity').send(id, { gasLimit: 400_000 });
      const t2 = await tqAs(worker(1)).getFunction('claimActivity').send(id, { gasLimit: 400_000 });
      await anvil.mine(1);
      const [r1, r2] = await waitForReceipts(stack.provider, [t1.hash, t2.hash]);
      expect(r1?.blockNumber).toBe(r2?.blockNumber ?? -1);
      expect([r1?.status, r2?.status].sort()).toEqual([0, 1]);
      const winner = r1?.status === 1 ? worker(0) : worker(1);
      expect((await activity(id ?? 0n)).worker).toBe(await winner.getAddress());
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
    }
  });

  test('inactive or unregistered workers are rejected with NotActiveWorker', async () => {
    const [id] = await enqueueActivities(stack, { queue: 'inactive', count: 1 });
    const strangerAddr = await stranger.getAddress();
    await expectRevert(send(tqAs(stranger), 'claimActivity', id), 'NotActiveWorker', [strangerAddr]);
    await expectRevert(send(tqAs(stranger), 'claimActivities', [id]), 'NotActiveWorker', [strangerAddr]);

    const w = worker(3);
    const wAddr = await w.getAddress();
    await send(stack.contracts.subnetControlPlane, 'setWorkerActive', wAddr, false);
    try {
      expect(await view(stack.contracts.subnetControlPlane, 'isWorkerActive', wAddr)).toBe(false);
      await expectRevert(send(tqAs(w), 'claimActivity', id), 'NotActiveWorker', [wAddr]);
    } finally {
      await send(stack.contracts.subnetControlPlane, 'setWorkerActive', wAddr, true);
    }
    await send(tqAs(w), 'claimActivity', id);
  });

  test('unknown ids revert UnknownActivity', async () => {
    const tq = tqAs(worker(0));
    await expectRevert(send(tq, 'claimActivity', 0), 'UnknownActivity', [0n]);
    await expectRevert(send(tq, 'claimActivity', 10n ** 9n), 'UnknownActivity', [10n ** 9n]);
    await expectRevert(send(tq, 'heartbeat', 10n ** 9n), 'UnknownActivity', [10n ** 9n]);
    await expectRevert(send(tq, 'completeActivity', 10n ** 9n, 'x'), 'UnknownActivity', [10n ** 9n]);
  });

  test('claimActivities claims the claimable ids and silently skips the rest', async () => {
    const list = await enqueueActivities(stack, { queue: 'batch-claim', count: 4 });
    const [a0, a1, a2, a3] = ids(list, 0, 1, 2, 3);
    await send(tqAs(worker(1)), 'claimActivity', a1); // taken by someone else
    const batch = [a0, 0n, 10n ** 9n, a1, a2, a0 /* duplicate */, a3];
    const tq = tqAs(worker(0));
    expect(await view<bigint>(tq, 'claimActivities', batch)).toBe(3n);
    const r = await send(tq, 'claimActivities', batch);
    const claimed = eventArgs(tq.interface, r.logs, stack.addresses.taskQueue, 'ActivityClaimed').map(
      (e) => e.activityId,
    );
    expect(claimed).toEqual([a0, a2, a3]);
    expect((await activity(a1)).worker).toBe(await worker(1).getAddress());
  });
});

describe('TaskQueue heartbeat, complete, fail', () => {
  test('only the assigned worker may heartbeat, complete or fail', async () => {
    const list = await enqueueActivities(stack, { queue: 'assigned', count: 3 });
    const [a0, a1, pending] = ids(list, 0, 1, 2);
    const mine = tqAs(worker(0));
    const other = tqAs(worker(1));
    const otherAddr = await worker(1).getAddress();
    await send(mine, 'claimActivities', [a0, a1]);

    await expectRevert(send(other, 'heartbeat', a0), 'NotAssignedWorker', [a0, otherAddr]);
    await expectRevert(send(other, 'completeActivity', a0, 'x'), 'NotAssignedWorker', [a0, otherAddr]);
    await expectRevert(send(other, 'failActivity', a0, 'x'), 'NotAssignedWorker', [a0, otherAddr]);
    // A Pending activity has no worker yet.
    await expectRevert(send(mine, 'heartbeat', pending), 'NotAssignedWorker', [pending, await worker(0).getAddress()]);

    const before = await activity(a0);
    await travel(5);
    const hb = await send(mine, 'heartbeat', a0);
    expect(eventArgs(mine.interface, hb.logs, stack.addresses.taskQueue, 'ActivityHeartbeat')).toHaveLength(1);
    expect((await activity(a0)).lastHeartbeatAt > before.lastHeartbeatAt).toBe(true);

    const done = await send(mine, 'completeActivity', a0, 'ipfs://result-0');
    expect(eventArgs(mine.interface, done.logs, stack.addresses.taskQueue, 'ActivityCompleted')[0]?.resultRef).toBe(
      'ipfs://result-0',
    );
    const a = await activity(a0);
    expect([Number(a.status), a.isCompleted, a.resultRef, a.isExpired]).toEqual([
      ActivityStatus.Completed,
      true,
      'ipfs://result-0',
      false,
    ]);
    expect(a.finishedAt > 0n).toBe(true);
    // Finished activities are no longer Claimed.
    await expectRevert(send(mine, 'completeActivity', a0, 'again'), 'NotClaimable', [a0, 3n]);
    await expectRevert(send(mine, 'heartbeat', a0), 'NotClaimable', [a0, 3n]);
    await expectRevert(send(mine, 'failActivity', a0, 'late'), 'NotClaimable', [a0, 3n]);

    const failed = await send(mine, 'failActivity', a1, 'decoder crashed');
    expect(eventArgs(mine.interface, failed.logs, stack.addresses.taskQueue, 'ActivityFailed')[0]?.reason).toBe(
      'decoder crashed',
    );
    const f = await activity(a1);
    expect([Number(f.status), f.isCompleted, f.resultRef]).toEqual([ActivityStatus.Failed, false, 'decoder crashed']);
    await expectRevert(send(mine, 'completeActivity', a1, 'x'), 'NotClaimable', [a1, 4n]);
  });

  test('heartbeatBatch accepts the valid ids and silently skips the rest', async () => {
    const list = await enqueueActivities(stack, { queue: 'batch-hb', count: 4 });
    const [a0, a1, a2, a3] = ids(list, 0, 1, 2, 3);
    const mine = tqAs(worker(0));
    await send(mine, 'claimActivities', [a0, a1, a2]);
    await send(tqAs(worker(1)), 'claimActivity', a3); // someone else's
    await send(mine, 'completeActivity', a2, 'r'); // finished
    const batch = [a0, 0n, 10n ** 9n, a2, a3, a1];
    expect(await view<bigint>(mine, 'heartbeatBatch', batch)).toBe(2n);
    const r = await send(mine, 'heartbeatBatch', batch);
    const beats = eventArgs(mine.interface, r.logs, stack.addresses.taskQueue, 'ActivityHeartbeat').map(
      (e) => e.activityId,
    );
    expect(beats).toEqual([a0, a1]);
  });

  test('getWorkerActivities tracks claims and finishes (swap-and-pop keeps the set consistent)', async () => {
    const w = worker(2);
    const tq = tqAs(w);
    expect(await workerActivities(w)).toEqual([]);
    const list = await enqueueActivities(stack, { queue: 'worker-set', count: 5 });
    const [a0, a1, a2, a3, a4] = ids(list, 0, 1, 2, 3, 4);
    await send(tq, 'claimActivities', [a0, a1, a2, a3]);
    await send(tq, 'claimActivity', a4);
    expect(await workerActivities(w)).toEqual([a0, a1, a2, a3, a4]);
    await send(tq, 'completeActivity', a1, 'r'); // middle: a4 moves into its slot
    expect(await workerActivities(w)).toEqual([a0, a2, a3, a4]);
    await send(tq, 'failActivity', a4, 'moved one'); // the moved entry is still removable
    expect(await workerActivities(w)).toEqual([a0, a2, a3]);
    await send(tq, 'completeActivity', a3, 'r'); // last
    await send(tq, 'completeActivity', a0, 'r'); // first
    expect(await workerActivities(w)).toEqual([a2]);
    await send(tq, 'completeActivity', a2, 'r');
    expect(await workerActivities(w)).toEqual([]);
  });
});

describe('TaskQueue expiry', () => {
  test('a lapsed heartbeat expires a claim: heartbeat and complete revert ActivityExpired', async () => {
    const [id] = await enqueueActivities(stack, { queue: 'expiry-hb', count: 1, heartbeatTimeoutS: 30 });
    const activityId = id ?? 0n;
    const tq = tqAs(worker(0));
    await send(tq, 'claimActivity', activityId);
    await travel(20);
    await send(tq, 'heartbeat', activityId); // keeps it alive
    await travel(20); // 40 s after the claim, ~20 s after the heartbeat
    expect((await activity(activityId)).isExpired).toBe(false);
    await travel(15); // ~35 s after the heartbeat
    const a = await activity(activityId);
    expect([Number(a.status), a.isExpired]).toEqual([ActivityStatus.Claimed, true]);
    await expectRevert(send(tq, 'heartbeat', activityId), 'ActivityExpired', [activityId]);
    await expectRevert(send(tq, 'completeActivity', activityId, 'r'), 'ActivityExpired', [activityId]);
    await expectRevert(send(tq, 'failActivity', activityId, 'r'), 'ActivityExpired', [activityId]);
    expect(await view<bigint>(tq, 'heartbeatBatch', [activityId])).toBe(0n);
    // Expired claims stay in the worker's set (they can no longer be finished); readers filter on isExpired.
    expect(await workerActivities(worker(0))).toContain(activityId);
  });

  test('the lifetime expires pending activities (not polled, not claimable) and long claims', async () => {
    const pending = await enqueueActivities(stack, { queue: 'expiry-life', count: 2 });
    const [longClaim] = await enqueueActivities(stack, {
      queue: 'expiry-life-claimed',
      count: 1,
      heartbeatTimeoutS: 10 ** 6,
    });
    const claimedId = longClaim ?? 0n;
    const tq = tqAs(worker(0));
    await send(tq, 'claimActivity', claimedId);
    expect((await poll('expiry-life', 1)).activityId).toBe(at(pending, 1));

    await travel(LIFETIME_S + 5);
    expect((await poll('expiry-life', 0)).hasActivity).toBe(false);
    const p = await activity(at(pending, 0));
    expect([Number(p.status), p.isExpired]).toEqual([ActivityStatus.Pending, true]);
    await expectRevert(send(tq, 'claimActivity', at(pending, 0)), 'ActivityExpired', [at(pending, 0)]);
    expect(await view<bigint>(tq, 'claimActivities', pending)).toBe(0n);

    expect((await activity(claimedId)).isExpired).toBe(true);
    await expectRevert(send(tq, 'heartbeat', claimedId), 'ActivityExpired', [claimedId]);
    await expectRevert(send(tq, 'completeActivity', claimedId, 'r'), 'ActivityExpired', [claimedId]);

    // Fresh activities in the same queue are claimable again, past the expired ones.
    const [fresh] = await enqueueActivities(stack, { queue: 'expiry-life', count: 1 });
    expect((await poll('expiry-life', 0)).activityId).toBe(fresh ?? -1n);
    await send(tq, 'claimActivity', fresh);
  });
});

describe('WorkflowEngine', () => {
  test('start → complete → resume chains steps, feeding resultRef forward when inputRef is empty', async () => {
    const wf = stack.contracts.workflowEngine;
    const tqi = stack.contracts.taskQueue.interface;
    const starter = wfAs(stranger); // anyone may start a workflow
    const steps = [
      ['transcode', 'ipfs://source', 0],
      ['thumbnail', '', 45],
      ['publish', 'explicit://2', 0],
    ];
    const r = await send(starter, 'startWorkflow', 'wf-q', steps);
    const started = eventArgs(wf.interface, r.logs, stack.addresses.workflowEngine, 'WorkflowStarted')[0];
    const instance = started?.instanceId as bigint;
    expect(started?.starter).toBe(await stranger.getAddress());
    expect(started?.stepCount).toBe(3n);
    expect(await view<bigint>(wf, 'workflowCount')).toBe(instance);
    const enq0 = eventArgs(tqi, r.logs, stack.addresses.taskQueue, 'ActivityEnqueued')[0];
    const act0 = enq0?.activityId as bigint;

    let w = await view<{
      id: bigint;
      starter: string;
      queue: string;
      currentStep: bigint;
      stepCount: bigint;
      currentActivityId: bigint;
      status: bigint;
    }>(wf, 'getWorkflow', instance);
    expect([w.id, w.starter, w.queue, w.currentStep, w.stepCount, w.currentActivityId, Number(w.status)]).toEqual([
      instance,
      await stranger.getAddress(),
      'wf-q',
      0n,
      3n,
      act0,
      WorkflowStatus.Running,
    ]);
    const a0 = await activity(act0);
    expect([a0.workflowInstance, a0.stepIndex, a0.activityType, a0.inputRef]).toEqual([
      instance,
      0n,
      'transcode',
      'ipfs://source',
    ]);

    await expectRevert(send(starter, 'resumeWorkflow', instance), 'StepNotCompleted', [instance, act0]);
    const tq = tqAs(worker(1));
    await send(tq, 'claimActivity', act0);
    await expectRevert(send(starter, 'resumeWorkflow', instance), 'StepNotCompleted', [instance, act0]);
    await send(tq, 'completeActivity', act0, 'ipfs://transcoded');

    const r1 = await send(starter, 'resumeWorkflow', instance);
    const resumed1 = eventArgs(wf.interface, r1.logs, stack.addresses.workflowEngine, 'WorkflowResumed')[0];
    const act1 = resumed1?.activityId as bigint;
    expect(resumed1?.instanceId).toBe(instance);
    expect(resumed1?.step).toBe(1n);
    const a1 = await activity(act1);
    expect([a1.workflowInstance, a1.stepIndex, a1.activityType, a1.inputRef, a1.heartbeatTimeout, a1.queue]).toEqual([
      instance,
      1n,
      'thumbnail',
      'ipfs://transcoded', // step 1's inputRef was empty: the previous result
      45n,
      'wf-q',
    ]);
    await send(tq, 'claimActivity', act1);
    await send(tq, 'completeActivity', act1, 'ipfs://thumbs');

    const r2 = await send(starter, 'resumeWorkflow', instance);
    const act2 = eventArgs(wf.interface, r2.logs, stack.addresses.workflowEngine, 'WorkflowResumed')[0]
      ?.activityId as bigint;
    expect((await activity(act2)).inputRef).toBe('explicit://2'); // its own inputRef wins
    w = await view(wf, 'getWorkflow', instance);
    expect([w.currentStep, w.currentActivityId]).toEqual([2n, act2]);
    await send(tq, 'claimActivity', act2);
    await send(tq, 'completeActivity', act2, 'ipfs://published');

    const r3 = await send(starter, 'resumeWorkflow', instance);
    expect(eventArgs(wf.interface, r3.logs, stack.addresses.workflowEngine, 'WorkflowCompleted')).toHaveLength(1);
    expect(eventArgs(tqi, r3.logs, stack.addresses.taskQueue, 'ActivityEnqueued')).toHaveLength(0);
    w = await view(wf, 'getWorkflow', instance);
    expect(Number(w.status)).toBe(WorkflowStatus.Completed);
    await expectRevert(send(starter, 'resumeWorkflow', instance), 'WorkflowFinished', [instance]);
  });

  test('guards: NoSteps, UnknownWorkflow, a failed step blocks resume', async () => {
    const wf = stack.contracts.workflowEngine;
    await expectRevert(send(wf, 'startWorkflow', 'wf-guard', []), 'NoSteps');
    await expectRevert(send(wf, 'resumeWorkflow', 10n ** 9n), 'UnknownWorkflow', [10n ** 9n]);
    await expectRevert(send(wf, 'resumeWorkflow', 0), 'UnknownWorkflow', [0n]);
    expect((await view<{ id: bigint }>(wf, 'getWorkflow', 10n ** 9n)).id).toBe(0n);

    const [started] = await startWorkflows(stack, { queue: 'wf-guard', count: 1, steps: 2 });
    if (!started) throw new Error('no workflow');
    await send(tqAs(worker(0)), 'claimActivity', started.activityId);
    await send(tqAs(worker(0)), 'failActivity', started.activityId, 'nope');
    await expectRevert(send(wf, 'resumeWorkflow', started.instanceId), 'StepNotCompleted', [
      started.instanceId,
      started.activityId,
    ]);
  });

  test('startWorkflows seeds many workflows with their first activity', async () => {
    const started = await startWorkflows(stack, {
      queue: 'wf-bulk',
      count: 5,
      steps: 3,
      activityType: 'noop',
      inputRef: 'in',
    });
    expect(started).toHaveLength(5);
    for (const s of started) {
      const a = await activity(s.activityId);
      expect([a.workflowInstance, a.stepIndex, a.activityType, a.inputRef]).toEqual([s.instanceId, 0n, 'noop', 'in']);
    }
  });
});

describe('Multicall3', () => {
  test('aggregate3 honours allowFailure and reverts with the standard message', async () => {
    const mc = stack.contracts.multicall3;
    const tq = stack.contracts.taskQueue;
    const good = {
      target: stack.addresses.taskQueue,
      allowFailure: false,
      callData: tq.interface.encodeFunctionData('activityCount'),
    };
    const bad = {
      target: stack.addresses.taskQueue,
      allowFailure: true,
      callData: tq.interface.encodeFunctionData('enqueueActivity', ['', 0, 0, '', '', 0]),
    };
    const results = await view<{ success: boolean; returnData: string }[]>(mc, 'aggregate3', [good, bad]);
    expect(results.map((r) => r.success)).toEqual([true, false]);
    expect(BigInt(at(results, 0).returnData)).toBe(await view<bigint>(tq, 'activityCount'));

    let reason = '';
    try {
      await view(mc, 'aggregate3', [good, { ...bad, allowFailure: false }]);
    } catch (e) {
      reason = String((e as { reason?: unknown }).reason);
    }
    expect(reason).toBe('Multicall3: call failed');

    const block = await anvil.blockNumber();
    expect(await view<bigint>(mc, 'getBlockNumber')).toBe(BigInt(block));
    const latest = await stack.provider.getBlock(block);
    expect(await view<bigint>(mc, 'getCurrentBlockTimestamp')).toBeGreaterThanOrEqual(BigInt(latest?.timestamp ?? 0));
    expect(await view<bigint>(mc, 'getEthBalance', addr(9))).toBe(await stack.provider.getBalance(addr(9)));
  });
});

describe('seeding helpers', () => {
  test('enqueueActivities works with automine off and interval mining', async () => {
    await anvil.rpc('evm_setAutomine', [false]);
    await anvil.rpc('evm_setIntervalMining', [1]);
    try {
      const list = await enqueueActivities(stack, { queue: 'interval', count: 30 });
      expect(list).toHaveLength(30);
      expect(list.every((id, i) => i === 0 || id === (list[i - 1] ?? 0n) + 1n)).toBe(true);
      expect((await poll('interval', 29)).activityId).toBe(at(list, 29));
    } finally {
      await anvil.rpc('evm_setIntervalMining', [0]);
      await anvil.rpc('evm_setAutomine', [true]);
    }
  });
});

describe('gas', () => {
  test('worker-side calls (figures printed at the end of the run)', async () => {
    const w = worker(4);
    const tq = tqAs(w);
    const list = await enqueueActivities(stack, { queue: 'gas', count: 24, inputRef: 'ipfs://bafy-input' });
    const record = (label: string, r: TransactionReceipt, per = 1) => {
      gas.push({ label, gas: Math.round(Number(r.gasUsed) / per) });
    };
    // Give the worker one long-lived claim so the active-set length slot is non-zero, as for a busy worker.
    await send(tq, 'claimActivity', at(list, 0));
    record('claimActivity', await send(tq, 'claimActivity', at(list, 1)));
    const batch = list.slice(2, 12);
    const claim10 = await send(tq, 'claimActivities', batch);
    record('claimActivities x10 (total)', claim10);
    record('claimActivities x10 (per activity)', claim10, 10);
    // Let time pass so the heartbeat really rewrites lastHeartbeatAt (same-second rewrites are no-op SSTOREs).
    await travel(2);
    record('heartbeat', await send(tq, 'heartbeat', at(list, 1)));
    const hb10 = await send(tq, 'heartbeatBatch', batch);
    record('heartbeatBatch x10 (total)', hb10);
    record('heartbeatBatch x10 (per activity)', hb10, 10);
    record(
      'completeActivity (46-char resultRef)',
      await send(tq, 'completeActivity', at(list, 1), 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylq'),
    );
    record('failActivity (short reason)', await send(tq, 'failActivity', at(list, 2), 'timeout'));
    record(
      'enqueueActivity (owner)',
      await send(stack.contracts.taskQueue, 'enqueueActivity', 'gas', 0, 0, 'echo', 'ipfs://bafy-input', 0),
    );

    const [wfStart] = await startWorkflows(stack, { queue: 'gas-wf', count: 1, steps: 2, inputRef: 'ipfs://in' });
    if (!wfStart) throw new Error('no workflow');
    await send(tq, 'claimActivity', wfStart.activityId);
    await send(tq, 'completeActivity', wfStart.activityId, 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylq');
    const resume = await send(stack.contracts.workflowEngine, 'resumeWorkflow', wfStart.instanceId);
    record('resumeWorkflow (enqueues next step)', resume);
    const next = eventArgs(
      stack.contracts.workflowEngine.interface,
      resume.logs,
      stack.addresses.workflowEngine,
      'WorkflowResumed',
    )[0]?.activityId as bigint;
    await send(tq, 'claimActivity', next);
    await send(tq, 'completeActivity', next, 'ipfs://out');
    record(
      'resumeWorkflow (last step: completes)',
      await send(stack.contracts.workflowEngine, 'resumeWorkflow', wfStart.instanceId),
    );

    const get = (label: string) => gas.find((g) => g.label === label)?.gas ?? Number.NaN;
    // Batching amortises the 21k transaction base cost.
    expect(get('claimActivities x10 (per activity)')).toBeLessThan(get('claimActivity'));
    expect(get('heartbeatBatch x10 (per activity)')).toBeLessThan(get('heartbeat'));
  });
});

describe('WcpBatchExecutor (EIP-7702 delegate)', () => {
  /** Anvil account 7, registered as a worker and delegated to the executor by the first test. */
  let wallet: Wallet;
  const rpc = () => testTransport(anvil.url, { chainId: anvil.chainId, timeoutMs: 10_000 });
  const tqi = () => stack.contracts.taskQueue.interface;
  const complete = (id: bigint, ref = 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylq'): BatchCall => ({
    to: stack.addresses.taskQueue,
    data: tqi().encodeFunctionData('completeActivity', [id, ref]),
  });
  /** A transaction from the wallet to itself with `data`, mined; its receipt. */
  async function selfTx(data: string): Promise<TransactionReceipt> {
    const tx = await wallet.sendTransaction({ to: wallet.address, data, gasLimit: 3_000_000n });
    const [r] = await waitForReceipts(stack.provider, [tx.hash]);
    if (!r) throw new Error('no receipt');
    return r;
  }

  test('the embedded artifact is the compiler output; deployed once at its pinned CREATE2 address; delegation reads as pinned', async () => {
    const c = stack.compiled.WcpBatchExecutor;
    // src/chain/batch-executor-code.ts is what `bun scripts/gen-batch-executor.ts` writes from this output.
    expect(readFileSync(`${import.meta.dir}/../src/chain/batch-executor-code.ts`, 'utf8')).toBe(
      artifactSource(c.bytecode, c.deployedBytecode),
    );
    expect(BATCH_EXECUTOR_CODE.initCode).toBe(c.bytecode);
    const sender = { provider: stack.provider, signer: stack.deployer, chainId: stack.chainId };
    expect(await deployBatchExecutor(sender)).toBe(true);
    expect(await deployBatchExecutor(sender)).toBe(false);
    expect(keccak256(await stack.provider.getCode(BATCH_EXECUTOR.address))).toBe(BATCH_EXECUTOR.codeHash);

    wallet = new Wallet(key(7), stack.provider);
    await registerWorker(stack, wallet.address, 64);
    expect(await readDelegation(rpc(), wallet.address)).toEqual({ kind: 'none' });
    // Self-sponsored: the authorization carries the nonce after the transaction's own.
    const nonce = await stack.provider.getTransactionCount(wallet.address);
    const auth = await wallet.authorize({ address: BATCH_EXECUTOR.address, nonce: nonce + 1, chainId: stack.chainId });
    const tx = await wallet.sendTransaction({
      type: 4,
      to: wallet.address,
      authorizationList: [auth],
      gasLimit: 100_000n,
    });
    await waitForReceipts(stack.provider, [tx.hash]);
    expect((await stack.provider.getCode(wallet.address)).toLowerCase()).toBe(designatorFor(BATCH_EXECUTOR.address));
    expect(await stack.provider.getTransactionCount(wallet.address)).toBe(nonce + 2);
    expect(await readDelegation(rpc(), wallet.address)).toEqual({ kind: 'pinned' });
    const ex = new Contract(wallet.address, batchExecutorIface, stack.provider);
    expect(await ex.getFunction('supportsExecutionMode').staticCall(MODE_BATCH_TRY)).toBe(true);
    expect(await ex.getFunction('supportsExecutionMode').staticCall(MODE_BATCH_DEFAULT)).toBe(true);
    expect(await ex.getFunction('supportsExecutionMode').staticCall(`0x0001${'00'.repeat(30)}`)).toBe(false);
    // A delegated wallet still takes plain ETH (its funding).
    const fund = await stack.deployer.sendTransaction({ to: wallet.address, value: 1n });
    expect((await waitForReceipts(stack.provider, [fund.hash]))[0]?.status).toBe(1);
  });

  test('try mode: every call runs as the wallet, a failing call is reported per index and costs only itself; simulate predicts it', async () => {
    const list = await enqueueActivities(stack, { queue: 'batch-try', count: 3 });
    const claims: BatchCall[] = [...list, 999_999n].map((id) => ({
      to: stack.addresses.taskQueue,
      data: tqi().encodeFunctionData('claimActivity', [id]),
    }));
    // The simulation (eth_call from the wallet to itself) says which calls would fail, and changes nothing.
    const sim = decodeSimulate(
      await stack.provider.call({ from: wallet.address, to: wallet.address, data: encodeSimulate(claims) }),
    );
    expect(sim.map((s) => s.ok)).toEqual([true, true, true, false]);
    expect(tqi().parseError(at(sim, 3).returnData)?.name).toBe('UnknownActivity');
    expect((await activity(at(list, 0))).status).toBe(BigInt(ActivityStatus.Pending));

    const r = await selfTx(encodeExecute(claims));
    expect(r.status).toBe(1);
    const failures = tryExecuteFailures(r.logs, wallet.address);
    expect([...failures.keys()]).toEqual([3]);
    expect(tqi().parseError(failures.get(3) ?? '0x')?.args[0]).toBe(999_999n);
    for (const id of list) expect((await activity(id)).worker).toBe(wallet.address);
    const claimed = eventArgs(tqi(), r.logs, stack.addresses.taskQueue, 'ActivityClaimed');
    expect(claimed.map((a) => a.activityId)).toEqual(list);

    // A call that fails in the middle: the calls around it still land.
    const mixed = [complete(at(list, 0)), complete(at(list, 0)), complete(at(list, 1))];
    const r2 = await selfTx(encodeExecute(mixed));
    expect([...tryExecuteFailures(r2.logs, wallet.address).keys()]).toEqual([1]);
    expect((await activity(at(list, 1))).status).toBe(BigInt(ActivityStatus.Completed));
    // Logs of another address are not the wallet's failures.
    expect(tryExecuteFailures(r2.logs, addr(1)).size).toBe(0);
  });

  test('only the wallet itself may execute or simulate', async () => {
    const other = new Wallet(key(8), stack.provider);
    const calls = [complete(1n)];
    for (const data of [encodeExecute(calls), encodeSimulate(calls)]) {
      let err: unknown;
      try {
        await stack.provider.call({ from: other.address, to: wallet.address, data });
      } catch (e) {
        err = e;
      }
      const parsed = batchExecutorIface.parseError(revertData(err) ?? '0x');
      expect(parsed?.name).toBe('AccountUnauthorized');
      expect(parsed?.args[0]).toBe(other.address);
    }
  });

  test('gas: a batch of N completes against N single transactions (figures printed at the end)', async () => {
    const N = 8;
    const list = await enqueueActivities(stack, { queue: 'batch-gas', count: 2 * N });
    expect(
      (
        await selfTx(
          encodeExecute([{ to: stack.addresses.taskQueue, data: tqi().encodeFunctionData('claimActivities', [list]) }]),
        )
      ).status,
    ).toBe(1);
    const tq = new Contract(stack.addresses.taskQueue, stack.compiled.TaskQueue.abi as never, wallet);
    let single = 0n;
    for (const id of list.slice(0, N)) {
      const tx = await tq.getFunction('completeActivity').send(id, 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylq');
      const [r] = await waitForReceipts(stack.provider, [tx.hash]);
      single += r?.gasUsed ?? 0n;
    }
    const batch = await selfTx(encodeExecute(list.slice(N).map((id) => complete(id))));
    expect(tryExecuteFailures(batch.logs, wallet.address).size).toBe(0);
    const perSingle = Number(single) / N;
    const perBatched = Number(batch.gasUsed) / N;
    // The executor's own cost per call: the marginal gas of an empty call (to the wallet's own receive()).
    const empty = (n: number) => Array.from({ length: n }, () => ({ to: wallet.address, data: '0x' }));
    const one = (await selfTx(encodeExecute(empty(1)))).gasUsed;
    const many = (await selfTx(encodeExecute(empty(N + 1)))).gasUsed;
    const overhead = Number(many - one) / N;
    gas.push({ label: `completeActivity single tx (mean of ${N})`, gas: Math.round(perSingle) });
    gas.push({ label: `completeActivity in a batch of ${N} (per call)`, gas: Math.round(perBatched) });
    gas.push({ label: 'batch executor cost per call (empty call)', gas: Math.round(overhead) });
    // Batching saves at least the 21k transaction base per call (warm storage after the first call saves more).
    expect(perSingle - perBatched).toBeGreaterThan(21_000);
    expect(overhead).toBeLessThan(3_000);
  });
});
