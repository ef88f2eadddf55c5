/**
 * Crash safety of the activity lifecycle (issue 3), end to end: the compiled binary (built-in no-op test
 * executor) against anvil with automine off and 0.5 s blocks, one wallet, 100 two-step workflows (200
 * activities, so workflow resumes are crossed by crashes too).
 *
 * The daemon is killed with SIGKILL at random moments (a seeded PRNG picks each run's length, 0.3–2.5 s after
 * the spawn) at least 20 times on the same store, then a last run finishes the work. Then:
 *  - no activity lost: every one Completed on chain, by our wallet, exactly once (one ActivityCompleted);
 *  - every workflow completed; every activity claimed exactly once; no claim or complete reverted;
 *  - no nonce gap: every nonce used once, and the lane records agree with the chain (`expectLaneMatchesChain`);
 *  - the lane never stalls: the last run finishes everything within its timeout and leaves nothing pending;
 *  - the store: a `done: completed` (resumed) record per activity, no `inflight:` and no `claim_job:` left.
 *
 * Reproduce a failure with `WCP_CRASH_SEED=<the seed printed> bun test test/e2e-lifecycle-crash.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, registerWorker, type Stack, startWorkflows } from '../scripts/lib/deploy.ts';
import { countBy, expectLaneMatchesChain } from './e2e-lifecycle-lib.ts';
import { activityViews, decodedCalls, queueEvents, rpcBatch } from './support/chain.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from './support/env.ts';
import { doneRecords, laneRecords, scan } from './support/store.ts';
import { sleep, until, waitDone } from './support/wait.ts';
import { assertRunning, finishSandbox, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';
import { prng } from './support/prng.ts';

const KILLS = 22;
const MIN_RUN_MS = 300;
const MAX_RUN_MS = 2_500;
const WORKFLOWS = 100;
const ACTIVITIES = WORKFLOWS * 2;

let anvil: Anvil | undefined;
let stack: Stack | undefined;
let sb: Sandbox | undefined;
const procs: WcpProcess[] = [];

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.5, accounts: 4 });
  // Heartbeat timeout 30 s: far longer than any restart gap, so no activity expires while wcp is down.
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey, heartbeatTimeoutS: 30 });
}, 60_000);
afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
  // WCP_E2E_KEEP=1 keeps the store and every run's log (run-N.log; the last one is the final run).
  finishSandbox('run', sb, procs);
}, 30_000);

describe('wcp binary: kill -9 at random moments during a 200-activity run', () => {
  test(`${KILLS} SIGKILLs and restarts on the same store: nothing lost, nothing done twice, no nonce gap, no stall`, async () => {
    const a = anvil as Anvil;
    const st = stack as Stack;
    const seed = Number(process.env.WCP_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rand = prng(seed);
    console.log(`[crash] seed ${seed} (replay with WCP_CRASH_SEED=${seed})`);

    const worker = a.accounts[1]!;
    const queue = 'lc-crash';
    await registerWorker(st, worker.address, 64);
    const wfs = await startWorkflows(st, { queue, count: WORKFLOWS, steps: 2, inputRef: 'json:{"n":1}' });
    sb = sandbox();
    const box = sb;
    // A short task, so kills land in every phase: claiming, running, completing, resuming, idle.
    const env = wcpEnv({ rpcUrl: a.url, privateKey: worker.privateKey, queue }, LIFECYCLE_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '600ms',
      WCP__SCHEDULER__MAX_INFLIGHT: '12',
    });
    const started = Date.now();

    const chainNonce = async () =>
      Number(
        BigInt((await rpcBatch<string>(a.url, [['eth_getTransactionCount', [worker.address, 'latest']]]))[0] as string),
      );
    const trail: string[] = [];
    for (let i = 1; i <= KILLS; i++) {
      const runMs = Math.round(MIN_RUN_MS + rand() * (MAX_RUN_MS - MIN_RUN_MS));
      const w = startWcp(box, ['run'], env);
      procs.push(w);
      await sleep(runMs);
      // It must still be running when killed: an exit on its own would be a crash of a different kind.
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) {
        throw new Error(
          `run ${i}: wcp exited by itself (${w.proc.exitCode ?? w.proc.signalCode}):\n${w.output().slice(-4000)}`,
        );
      }
      w.proc.kill('SIGKILL');
      expect(await w.exited).toBe('SIGKILL');
      const done = scan(box, 'done:').length;
      trail.push(`${runMs}ms→${done}/${await chainNonce()}`);
    }
    const killedAt = Date.now();
    console.log(
      `[crash] ${KILLS} kills in ${((killedAt - started) / 1000).toFixed(1)} s (run length→done records/chain nonce): ${trail.join(' ')}`,
    );
    const doneBeforeFinal = scan(box, 'done:').length;

    // The last run: everything finishes and the lane drains.
    const w = startWcp(box, ['run'], env);
    procs.push(w);
    await waitDone(box, ACTIVITIES, 90_000, () => assertRunning(w)).catch(async (e) => {
      // Say which activities are missing and where the chain has them, before the stack goes away.
      const done = new Set(doneRecords(box).map((r) => r.activity_id));
      const enqueued = (await queueEvents(a.url, st.addresses.taskQueue)).filter((x) => x.name === 'ActivityEnqueued');
      const missing = enqueued.map((x) => x.activityId).filter((id) => !done.has(id));
      const views = await activityViews(st, missing);
      const where = missing.map(
        (id, i) => `${id}:${JSON.stringify(views[i], (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
      // Workflows whose first step is done here but whose second step was never enqueued (a lost resume).
      const firsts = await activityViews(st, [...done]);
      const byWf = new Map<string, number>();
      for (const v of firsts) byWf.set(String(v.workflowInstance), (byWf.get(String(v.workflowInstance)) ?? 0) + 1);
      const single = firsts.filter((v) => byWf.get(String(v.workflowInstance)) === 1 && v.stepIndex === 0n);
      const unresumed = single.map((v) => {
        const d = doneRecords(box).find((r) => r.activity_id === String(v.id));
        return `${v.id}(wf ${v.workflowInstance}): done ${JSON.stringify(d)}`;
      });
      throw new Error(
        `${e instanceof Error ? e.message : e}\nnot done: ${where.join('\n')}\nfirst steps with no second: ${unresumed.join('\n')}`,
      );
    });
    await until(
      async () => {
        assertRunning(w);
        const open = laneRecords(box).filter((r) => r.state !== 'confirmed' && r.state !== 'failed').length;
        const [latest, pending] = await rpcBatch<string>(a.url, [
          ['eth_getTransactionCount', [worker.address, 'latest']],
          ['eth_getTransactionCount', [worker.address, 'pending']],
        ]);
        return { open, gap: Number(BigInt(pending as string) - BigInt(latest as string)) };
      },
      (s) => s.open === 0 && s.gap === 0,
      30_000,
      () =>
        `every lane record final and nothing pending on chain; open: ${JSON.stringify(
          laneRecords(box)
            .filter((r) => r.state !== 'confirmed' && r.state !== 'failed')
            .map((r) => ({
              nonce: r.nonce,
              kind: r.kind,
              state: r.state,
              ids: r.activity_ids,
              hashes: r.hashes.length,
            })),
        )}\nthe last run's log ends:\n${w.output().slice(-3000)}`,
    );
    const finalS = (Date.now() - killedAt) / 1000;
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);

    // The store: one done (completed, resumed) per activity, nothing held, no claim job left.
    const records = doneRecords(box);
    expect(records.length).toBe(ACTIVITIES);
    const notCompleted = records.filter((r) => r.outcome !== 'completed' || r.resumed !== true);
    expect(notCompleted).toEqual([]);
    expect(scan(box, 'inflight:')).toEqual([]);
    expect(scan(box, 'claim_job:')).toEqual([]);

    // The chain: every enqueued activity claimed once and completed once, both by us.
    const events = await queueEvents(a.url, st.addresses.taskQueue);
    const ids = events.filter((e) => e.name === 'ActivityEnqueued').map((e) => e.activityId);
    expect(ids.length).toBe(ACTIVITIES);
    expect(new Set(records.map((r) => r.activity_id))).toEqual(new Set(ids));
    const me = worker.address.toLowerCase();
    const claimed = events.filter((e) => e.name === 'ActivityClaimed');
    const completed = events.filter((e) => e.name === 'ActivityCompleted');
    const twice = (xs: typeof events) =>
      [...countBy(xs, (e) => e.activityId)].filter(([, n]) => n !== 1).map(([id, n]) => `${id}×${n}`);
    expect(twice(claimed)).toEqual([]);
    expect(twice(completed)).toEqual([]);
    expect(new Set(claimed.map((e) => e.activityId))).toEqual(new Set(ids));
    expect(new Set(completed.map((e) => e.activityId))).toEqual(new Set(ids));
    expect([...claimed, ...completed].filter((e) => e.worker !== me)).toEqual([]);
    expect(events.filter((e) => e.name === 'ActivityFailed')).toEqual([]);
    const flows = await Promise.all(
      wfs.map((f) => st.contracts.workflowEngine.getFunction('getWorkflow')(f.instanceId)),
    );
    expect(flows.map((f) => Number(f.status))).toEqual(wfs.map(() => 2));

    // The lane: every nonce used once, no gap, the records agree with the chain; no claim/complete reverted.
    const txs = await expectLaneMatchesChain(box, a.url, worker.address);
    const recs = laneRecords(box);
    const reverted = decodedCalls(txs)
      .filter((c) => !c.ok)
      .map((c) => ({ call: c.fn, ids: c.ids.join(','), nonce: c.nonce, block: c.blockNumber }));
    const finishing = ['claimActivity', 'claimActivities', 'completeActivity', 'failActivity'];
    expect(reverted.filter((r) => finishing.includes(r.call))).toEqual([]);
    const kinds = countBy(recs, (r) => r.kind);
    console.log(
      `[crash] ${ACTIVITIES} activities: ${doneBeforeFinal} done before the last run, which finished the rest in ${finalS.toFixed(1)} s; ` +
        `${txs.length} txs ${JSON.stringify(Object.fromEntries(kinds))}; reverted (other kinds): ${JSON.stringify(reverted)}; ` +
        `total ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 150_000);
});
