/**
 * Reorgs under crashes, end to end: the compiled binary (built-in no-op test executor) against anvil with 1 s
 * blocks and `ethereum.confirmations = 1`. One anvil and one deployed stack for the file.
 *
 * A claim taken back after a kill -9 and a store wipe: life 1 claims two activities and is killed while they run;
 * its store is wiped; life 2 rebuilds them from the chain ("claimed by us, no local record"). Then `anvil_reorg`
 * replaces every block from the claim's on with empty ones: the claim is gone, and no lane record of life 2 can
 * re-mine it (life 1 signed it; its nonce is filled with a noop). The activities are Pending and claimable again;
 * wcp must put them back on the claim path (its heartbeats of them are mined without accepting them), claim them
 * again and complete each exactly once, failing nothing.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack, startWorkflows } from '../scripts/lib/deploy.ts';
import { activityViews, queueEvents, rpcBatch } from './support/chain.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from './support/env.ts';
import { doneRecords, scan } from './support/store.ts';
import { until } from './support/wait.ts';
import {
  assertRunning,
  finishSandbox,
  linesWith,
  type Sandbox,
  sandbox,
  startWcp,
  type WcpProcess,
} from './support/wcp.ts';

let anvil: Anvil | undefined;
let stack: Stack | undefined;
let sb: Sandbox | undefined;
const boxes: Sandbox[] = [];
const procs: WcpProcess[] = [];

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 1, accounts: 4 });
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey, heartbeatTimeoutS: 30 });
}, 60_000);
afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
  finishSandbox('wcp', sb, procs);
  for (const b of boxes) finishSandbox('wcp', b, []);
}, 30_000);

/** `anvil_reorg` of every block from `fromBlock` on, replaced by empty ones (mining paused meanwhile). */
async function reorgFrom(a: Anvil, fromBlock: number): Promise<void> {
  await a.rpc('evm_setIntervalMining', [0]);
  try {
    await a.rpc('anvil_reorg', [(await a.blockNumber()) - fromBlock + 1, []]);
  } finally {
    await a.rpc('evm_setIntervalMining', [1]);
  }
}

/** The workflow as `getWorkflow` says (status 1 running, 2 completed). */
async function workflowOf(st: Stack, id: bigint): Promise<{ step: number; status: number; current: string }> {
  const w = (await st.contracts.workflowEngine.getFunction('getWorkflow')(id)) as {
    currentStep: bigint;
    status: bigint;
    currentActivityId: bigint;
  };
  return { step: Number(w.currentStep), status: Number(w.status), current: String(w.currentActivityId) };
}

/** A registered worker (anvil account `account`) and one two-step workflow on its own `queue`, with a sandbox. */
async function twoStepWorkflow(a: Anvil, st: Stack, account: number, queue: string) {
  const me = a.accounts[account]!;
  await registerWorker(st, me.address, 8);
  const [wf] = await startWorkflows(st, { queue, count: 1, steps: 2 });
  const box = sandbox();
  boxes.push(box);
  return {
    me,
    meLc: me.address.toLowerCase(),
    queue,
    instance: (wf as { instanceId: bigint }).instanceId,
    step0: String((wf as { activityId: bigint }).activityId),
    box,
  };
}

/** Every activity named in `ids` was completed once, by `me`, and none was failed, on the final chain. */
async function expectCompletedOnce(a: Anvil, st: Stack, ids: string[], me: string): Promise<void> {
  const events = (await queueEvents(a.url, st.addresses.taskQueue)).filter((e) => ids.includes(e.activityId));
  for (const id of ids) {
    const mine = events.filter((e) => e.activityId === id);
    expect({ id, completed: mine.filter((e) => e.name === 'ActivityCompleted').map((e) => e.worker) }).toEqual({
      id,
      completed: [me],
    });
    expect(mine.filter((e) => e.name === 'ActivityFailed')).toEqual([]);
  }
}

/** Lane nonce gap (pending − latest) of `address`. */
async function laneGap(a: Anvil, address: string): Promise<number> {
  const [latest, pending] = await rpcBatch<string>(a.url, [
    ['eth_getTransactionCount', [address, 'latest']],
    ['eth_getTransactionCount', [address, 'pending']],
  ]);
  return Number(BigInt(pending as string) - BigInt(latest as string));
}

describe('wcp binary: reorgs under crashes', () => {
  test('a claim reorged away after a kill -9 and a store wipe is claimed again and completed once; nothing failed', async () => {
    const a = anvil as Anvil;
    const st = stack as Stack;
    const me = a.accounts[1]!;
    const meLc = me.address.toLowerCase();
    const queue = 'reorg-wipe';
    await registerWorker(st, me.address, 8);
    const ids = (await enqueueActivities(st, { queue, count: 2 })).map(String);
    sb = sandbox();
    const box = sb;
    const env = (delay: string) =>
      wcpEnv({ rpcUrl: a.url, privateKey: me.privateKey, queue }, LIFECYCLE_SETTINGS, {
        WCP__EXECUTOR__NOOP_DELAY: delay,
        WCP__SCHEDULER__MAX_INFLIGHT: '8',
      });

    // Life 1: claims both (never finishes them), then kill -9 and a wiped store.
    const w1 = startWcp(box, ['run'], env('120s'));
    procs.push(w1);
    const claims = await until(
      async () => {
        assertRunning(w1);
        return (await queueEvents(a.url, st.addresses.taskQueue)).filter(
          (e) => e.worker === meLc && e.name === 'ActivityClaimed',
        );
      },
      (c) => c.length === 2,
      30_000,
      'both claimed by life 1',
    );
    const claimBlock = Math.min(...claims.map((e) => e.blockNumber));
    w1.proc.kill('SIGKILL');
    expect(await w1.exited).toBe('SIGKILL');
    rmSync(box.dbPath, { recursive: true, force: true });
    rmSync(`${box.dbPath}-lock`, { force: true });

    // Life 2: rebuilds both from the chain (R3a), runs them.
    const w2 = startWcp(box, ['run'], env('6s'));
    procs.push(w2);
    await until(
      async () => {
        assertRunning(w2);
        return linesWith(w2, 'repaired from chain').filter((l) => l.rule === 'R3a').length;
      },
      (n) => n >= 2,
      30_000,
      'life 2 rebuilt both from the chain',
    );

    // The reorg: every block from the claim's on replaced by empty ones (the removed transactions are dropped).
    await a.rpc('evm_setIntervalMining', [0]);
    try {
      const head = await a.blockNumber();
      await a.rpc('anvil_reorg', [head - claimBlock + 1, []]);
    } finally {
      await a.rpc('evm_setIntervalMining', [1]);
    }
    const views = await activityViews(st, ids);
    expect(views.map((v) => Number(v.status))).toEqual([1, 1]); // Pending again, claimable

    // wcp claims them again and completes each once; the lane drains.
    const settled = await until(
      async () => {
        assertRunning(w2);
        const vs = await activityViews(st, ids);
        const done = new Map(doneRecords(box).map((d) => [d.activity_id, d.outcome]));
        const [latest, pending] = await rpcBatch<string>(a.url, [
          ['eth_getTransactionCount', [me.address, 'latest']],
          ['eth_getTransactionCount', [me.address, 'pending']],
        ]);
        return {
          chain: vs.map((v) => `${Number(v.status)}:${v.worker.toLowerCase() === meLc ? 'us' : v.worker}`),
          done: ids.map((id) => done.get(id) ?? '-'),
          held: scan(box, 'inflight:').length,
          gap: Number(BigInt(pending as string) - BigInt(latest as string)),
        };
      },
      (s) => s.chain.every((c) => c === '3:us') && s.done.every((d) => d === 'completed') && s.held === 0,
      60_000,
      'both claimed again and completed by us',
    );
    expect(settled.gap).toBe(0);
    const requeued = linesWith(w2, 'repaired from chain').filter((l) => l.action === 'requeue');
    expect(new Set(requeued.map((l) => String(l.activity_id)))).toEqual(new Set(ids));
    w2.proc.kill('SIGTERM');
    expect(await w2.exited).toBe(0);

    const events = (await queueEvents(a.url, st.addresses.taskQueue)).filter((e) => ids.includes(e.activityId));
    for (const id of ids) {
      const mine = events.filter((e) => e.activityId === id);
      expect(mine.filter((e) => e.name === 'ActivityCompleted').map((e) => e.worker)).toEqual([meLc]);
      expect(mine.filter((e) => e.name === 'ActivityFailed')).toEqual([]);
    }
  }, 150_000);

  test('a completion and its resume reorged away after done was recorded (store wiped between) are sent again: completed once, workflow finished', async () => {
    const a = anvil as Anvil;
    const st = stack as Stack;
    const { me, meLc, queue, instance, step0, box } = await twoStepWorkflow(a, st, 2, 'reorg-done');
    const env = wcpEnv({ rpcUrl: a.url, privateKey: me.privateKey, queue }, LIFECYCLE_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '1s',
    });

    // Life 1 completes step 0 and resumes the workflow; killed at once, its store wiped.
    const w1 = startWcp(box, ['run'], env);
    procs.push(w1);
    const completion = await until(
      async () => {
        assertRunning(w1);
        const evs = await queueEvents(a.url, st.addresses.taskQueue);
        const done = evs.find((e) => e.activityId === step0 && e.name === 'ActivityCompleted');
        return done && (await workflowOf(st, instance)).step === 1 ? done : undefined;
      },
      (c) => c !== undefined,
      30_000,
      'step 0 completed and the workflow resumed by life 1',
    );
    w1.proc.kill('SIGKILL');
    expect(await w1.exited).toBe('SIGKILL');
    rmSync(box.dbPath, { recursive: true, force: true });
    rmSync(`${box.dbPath}-lock`, { force: true });

    // Life 2 records step 0 done from the chain (its lane knows nothing of life 1's nonces).
    const w2 = startWcp(box, ['run'], env);
    procs.push(w2);
    await until(
      async () => {
        assertRunning(w2);
        return doneRecords(box).find((d) => d.activity_id === step0)?.outcome;
      },
      (o) => o === 'completed',
      30_000,
      'life 2 recorded step 0 done from the chain',
    );
    // The reorg takes back the completion, the resume and whatever followed: step 0 is ours and running again.
    await reorgFrom(a, (completion as { blockNumber: number }).blockNumber);
    const [v0] = await activityViews(st, [step0]);
    expect({ status: Number(v0?.status), worker: v0?.worker.toLowerCase() }).toEqual({ status: 2, worker: meLc });
    expect((await workflowOf(st, instance)).step).toBe(0);

    // wcp completes step 0 again, resumes the workflow, runs step 1: each completed once, nothing failed.
    const end = await until(
      async () => {
        assertRunning(w2);
        const w = await workflowOf(st, instance);
        const held = scan(box, 'inflight:').length;
        return { ...w, held, gap: await laneGap(a, me.address) };
      },
      (s) => s.status === 2 && s.held === 0 && s.gap === 0,
      60_000,
      'workflow finished after the reorg',
    );
    const step1 = end.current;
    expect(step1).not.toBe(step0);
    w2.proc.kill('SIGTERM');
    expect(await w2.exited).toBe(0);
    await expectCompletedOnce(a, st, [step0, step1], meLc);
  }, 150_000);

  test('a reorg that takes back the resume enqueuing a step and its claim fails nothing: the step completes once the chain settled', async () => {
    const a = anvil as Anvil;
    const st = stack as Stack;
    const { me, meLc, queue, instance, step0, box } = await twoStepWorkflow(a, st, 3, 'reorg-resume');
    const w = startWcp(
      box,
      ['run'],
      wcpEnv({ rpcUrl: a.url, privateKey: me.privateKey, queue }, LIFECYCLE_SETTINGS, {
        WCP__EXECUTOR__NOOP_DELAY: '5s',
      }),
    );
    procs.push(w);
    // Step 1 enqueued by our resume and claimed by us (running at the executor).
    const { resumeBlock, step1 } = await until(
      async () => {
        assertRunning(w);
        const wfNow = await workflowOf(st, instance);
        if (wfNow.step !== 1) return { resumeBlock: -1, step1: '' };
        const evs = await queueEvents(a.url, st.addresses.taskQueue);
        const enq = evs.find((e) => e.activityId === wfNow.current && e.name === 'ActivityEnqueued');
        const claimed = evs.some((e) => e.activityId === wfNow.current && e.name === 'ActivityClaimed');
        return { resumeBlock: claimed && enq ? enq.blockNumber : -1, step1: wfNow.current };
      },
      (r) => r.resumeBlock >= 0,
      30_000,
      'step 1 enqueued and claimed',
    );
    await reorgFrom(a, resumeBlock);
    const [v1] = await activityViews(st, [step1]);
    expect(Number(v1?.status)).toBe(0); // step 1 does not exist on this chain for now

    const end = await until(
      async () => {
        assertRunning(w);
        const wfNow = await workflowOf(st, instance);
        return { ...wfNow, held: scan(box, 'inflight:').length, gap: await laneGap(a, me.address) };
      },
      (s) => s.status === 2 && s.held === 0 && s.gap === 0,
      60_000,
      'workflow finished after the reorg',
    );
    expect(end.current).toBe(step1);
    const done = new Map(doneRecords(box).map((d) => [d.activity_id, d.outcome]));
    expect([done.get(step0), done.get(step1)]).toEqual(['completed', 'completed']);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    await expectCompletedOnce(a, st, [step0, step1], meLc);
  }, 150_000);
});
