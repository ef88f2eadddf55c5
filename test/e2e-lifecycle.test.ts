/**
 * The activity lifecycle end to end: the compiled binary (built-in no-op test executor) against anvil with
 * automine off and 0.5 s blocks. Each test uses its own queue and its own worker wallet on one chain.
 *  - 100 two-step workflows (200 activities): enqueue → claim → heartbeats → complete → resume, no failure,
 *    the chain agrees, every nonce used once.
 *  - Two instances with different wallets race for the same 100 activities: each claimed once, no crash, no
 *    reverted claim; the gas the losers spent on lost claims is measured and printed.
 *  - An activity that expires while wcp is frozen (SIGSTOP past its heartbeat timeout) is dropped locally: no
 *    heartbeat or completion for it after its on-chain expiry, no reverted transaction.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack, startWorkflows } from '../scripts/lib/deploy.ts';
import { countBy, expectLaneMatchesChain } from './e2e-lifecycle-lib.ts';
import { activityViews, CLAIM_FNS, decodedCalls, failedCalls, queueEvents, walletTxs } from './support/chain.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from './support/env.ts';
import { doneRecords, laneRecords, scan } from './support/store.ts';
import { sleep, until, waitDone } from './support/wait.ts';
import { assertRunning, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let anvil: Anvil;
let stack: Stack;
const sandboxes: Sandbox[] = [];
const procs: WcpProcess[] = [];

function newSandbox(): Sandbox {
  const sb = sandbox();
  sandboxes.push(sb);
  return sb;
}
function run(sb: Sandbox, env: Record<string, string>): WcpProcess {
  const w = startWcp(sb, ['run'], env);
  procs.push(w);
  return w;
}
async function stopGracefully(w: WcpProcess) {
  w.proc.kill('SIGTERM');
  expect(await w.exited).toBe(0);
}

beforeAll(async () => {
  anvil = await startAnvil({ blockTime: 0.5, accounts: 20 });
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey, heartbeatTimeoutS: 10 });
}, 120_000);
afterAll(async () => {
  for (const w of procs) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  stack?.destroy();
  await anvil?.stop();
  for (const sb of sandboxes) sb.cleanup();
}, 60_000);

describe('wcp binary: activity lifecycle on anvil (automine off, 0.5 s blocks)', () => {
  test('200 activities (100 two-step workflows) are claimed, heartbeated, completed and resumed; every nonce used once', async () => {
    const worker = anvil.accounts[1]!;
    const queue = 'lc-happy';
    await registerWorker(stack, worker.address, 64);
    const wfs = await startWorkflows(stack, { queue, count: 100, steps: 2, inputRef: 'json:{"n":1}' });
    const sb = newSandbox();
    const started = Date.now();
    const w = run(sb, wcpEnv({ rpcUrl: anvil.url, privateKey: worker.privateKey, queue }, LIFECYCLE_SETTINGS));
    const done = await waitDone(sb, 200, 150_000, () => assertRunning(w));
    const elapsedS = (Date.now() - started) / 1000;
    await stopGracefully(w);
    await Bun.write('/tmp/wcp-lc-happy.log', w.output());

    const records = doneRecords(sb);
    expect(done.done).toBe(200);
    expect(records.filter((r) => r.outcome === 'completed' && r.resumed === true).length).toBe(200);
    expect(scan(sb, 'claim_job:').length).toBe(0);

    // The chain agrees: every activity Completed by us, every workflow completed.
    const ids = records.map((r) => r.activity_id);
    const views = await activityViews(stack, ids);
    expect(
      views.every(
        (v) => v.isCompleted && Number(v.status) === 3 && v.worker.toLowerCase() === worker.address.toLowerCase(),
      ),
    ).toBe(true);
    const flows = await Promise.all(
      wfs.map((f) => stack.contracts.workflowEngine.getFunction('getWorkflow')(f.instanceId)),
    );
    expect(flows.map((f) => Number(f.status))).toEqual(wfs.map(() => 2));

    // Events: one claim and one completion per activity, heartbeats were really sent.
    const events = (await queueEvents(anvil.url, stack.addresses.taskQueue)).filter((e) => ids.includes(e.activityId));
    const claims = countBy(
      events.filter((e) => e.name === 'ActivityClaimed'),
      (e) => e.activityId,
    );
    const completes = countBy(
      events.filter((e) => e.name === 'ActivityCompleted'),
      (e) => e.activityId,
    );
    const beats = events.filter((e) => e.name === 'ActivityHeartbeat');
    expect(claims.size).toBe(200);
    expect([...claims.values()].every((c) => c === 1)).toBe(true);
    expect(completes.size).toBe(200);
    expect([...completes.values()].every((c) => c === 1)).toBe(true);
    expect(beats.length).toBeGreaterThan(0);
    // No activity expired: each completion came within the heartbeat timeout of its last claim/heartbeat.
    for (const id of ids) {
      const mine = events
        .filter((e) => e.activityId === id && e.name !== 'ActivityEnqueued')
        .sort((a, b) => a.blockNumber - b.blockNumber);
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.timestamp - mine[i - 1]!.timestamp).toBeLessThanOrEqual(10);
    }

    // Every nonce used once; no reverted transaction.
    const txs = await expectLaneMatchesChain(sb, anvil.url, worker.address);
    expect(failedCalls(txs)).toEqual([]);
    const kinds = countBy(laneRecords(sb), (r) => r.kind);
    expect(kinds.get('noop') ?? 0).toBe(0);
    console.log(
      `[lifecycle] 200 activities in ${elapsedS.toFixed(1)} s; ${txs.length} txs (${JSON.stringify(Object.fromEntries(kinds))}); ` +
        `${beats.length} ActivityHeartbeat events for ${new Set(beats.map((b) => b.activityId)).size} activities`,
    );
  }, 200_000);

  test('two instances with different wallets race for the same activities: each claimed once, no crash, no reverted claim', async () => {
    const a = anvil.accounts[2]!;
    const b = anvil.accounts[3]!;
    const queue = 'lc-race';
    await registerWorker(stack, a.address, 64);
    await registerWorker(stack, b.address, 64);
    const idsBig = await enqueueActivities(stack, { queue, count: 100 });
    const ids = idsBig.map(String);
    const sbA = newSandbox();
    const sbB = newSandbox();
    // Same settings on both so they poll, see and simulate the same ids at the same moments.
    const extra = { WCP__EXECUTOR__NOOP_DELAY: '500ms', WCP__SCHEDULER__MAX_INFLIGHT: '32' };
    const wA = run(sbA, wcpEnv({ rpcUrl: anvil.url, privateKey: a.privateKey, queue }, LIFECYCLE_SETTINGS, extra));
    const wB = run(sbB, wcpEnv({ rpcUrl: anvil.url, privateKey: b.privateKey, queue }, LIFECYCLE_SETTINGS, extra));
    await until(
      () => {
        assertRunning(wA);
        assertRunning(wB);
        const done = [...doneRecords(sbA), ...doneRecords(sbB)];
        return done.filter((d) => d.outcome === 'completed').length;
      },
      (n) => n >= 100,
      120_000,
      '100 completions across both instances',
    );
    await sleep(1000);
    assertRunning(wA);
    assertRunning(wB);
    await stopGracefully(wA);
    await stopGracefully(wB);

    const events = (await queueEvents(anvil.url, stack.addresses.taskQueue)).filter((e) => ids.includes(e.activityId));
    const claimEv = events.filter((e) => e.name === 'ActivityClaimed');
    const claims = countBy(claimEv, (e) => e.activityId);
    expect(claims.size).toBe(100);
    expect([...claims.values()].every((c) => c === 1)).toBe(true);
    const completes = countBy(
      events.filter((e) => e.name === 'ActivityCompleted'),
      (e) => e.activityId,
    );
    expect(completes.size).toBe(100);
    expect([...completes.values()].every((c) => c === 1)).toBe(true);
    const winner = new Map(claimEv.map((e) => [e.activityId, e.worker]));

    // Each side's done records agree with who won.
    for (const [sb, who] of [
      [sbA, a],
      [sbB, b],
    ] as const) {
      for (const d of doneRecords(sb)) {
        const won = winner.get(d.activity_id) === who.address.toLowerCase();
        // A loser's record: 'lost' (seen claimed by the other) or 'finished_elsewhere' (seen already completed).
        const outcome = won ? 'completed' : d.outcome === 'finished_elsewhere' ? 'finished_elsewhere' : 'lost';
        expect({ id: d.activity_id, outcome: d.outcome }).toEqual({ id: d.activity_id, outcome });
      }
      await expectLaneMatchesChain(sb, anvil.url, who.address);
    }

    // Claim transactions: none reverted; gas spent on ids the sender did not win.
    const txs = await walletTxs(anvil.url, [a.address, b.address]);
    const report: string[] = [];
    for (const who of [a, b]) {
      const me = who.address.toLowerCase();
      const mine = txs.get(me) ?? [];
      expect(failedCalls(mine)).toEqual([]);
      const claimTxs = decodedCalls(mine).filter(
        (c) => c.to === stack.addresses.taskQueue.toLowerCase() && CLAIM_FNS.has(c.fn),
      );
      let lostIds = 0;
      let lostTxs = 0;
      let wastedWei = 0n;
      let wastedGas = 0n;
      for (const c of claimTxs) {
        const lost = c.ids.filter((id) => winner.get(id) !== me);
        lostIds += lost.length;
        if (lost.length === c.ids.length) {
          lostTxs += 1;
          // A claim alone in its tx paid for the whole tx; inside a batch, its share.
          const gas = c.gasUsed / BigInt(c.siblings);
          wastedGas += gas;
          wastedWei += gas * c.effectiveGasPrice;
        }
      }
      const won = [...winner.values()].filter((w) => w === me).length;
      report.push(
        `${who.address.slice(0, 8)}: won ${won}, ${claimTxs.length} claim txs, ${lostIds} ids asked for but won by the other, ` +
          `${lostTxs} claim txs that won nothing (${wastedGas} gas, ${wastedWei} wei)`,
      );
    }
    console.log(`[lifecycle race] ${report.join(' | ')}`);
  }, 180_000);

  test('an activity that expires while wcp is frozen is dropped locally: no heartbeat or completion after its expiry, nothing reverted', async () => {
    const worker = anvil.accounts[4]!;
    const queue = 'lc-expiry';
    await registerWorker(stack, worker.address, 8);
    // Heartbeat timeout 4 s; the no-op executor takes 60 s, so only heartbeats keep the activity alive.
    const [id0] = await enqueueActivities(stack, { queue, count: 1, heartbeatTimeoutS: 4 });
    const id = String(id0);
    const sb = newSandbox();
    const env = wcpEnv({ rpcUrl: anvil.url, privateKey: worker.privateKey, queue }, LIFECYCLE_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '60s',
      WCP__LOG__LEVEL: 'debug',
    });
    const w = run(sb, env);
    // Running and heartbeated at least twice on chain.
    await until(
      async () => {
        assertRunning(w);
        return (await queueEvents(anvil.url, stack.addresses.taskQueue)).filter(
          (e) => e.activityId === id && e.name === 'ActivityHeartbeat',
        ).length;
      },
      (n) => n >= 2,
      30_000,
      'two heartbeats on chain',
    );
    // Freeze right after a heartbeat was sent (its tx is then in flight while wcp is stopped).
    const sentBefore = (w.output().match(/"heartbeat sent"/g) ?? []).length;
    await until(
      () => (w.output().match(/"heartbeat sent"/g) ?? []).length,
      (n) => n > sentBefore,
      10_000,
      'a heartbeat being sent',
    );
    w.proc.kill('SIGSTOP');
    await sleep(9000); // > 4 s heartbeat timeout past any heartbeat that was in flight
    w.proc.kill('SIGCONT');
    const done = await until(
      () => doneRecords(sb),
      (d) => d.length === 1,
      20_000,
      'the activity done locally',
    );
    expect(done[0]).toMatchObject({ activity_id: id, outcome: 'expired' });
    await sleep(5000); // anything wrongly sent after the thaw would be mined by now
    assertRunning(w);
    await stopGracefully(w);

    const view = (await activityViews(stack, [id]))[0]!;
    expect(view.isExpired).toBe(true);
    expect(view.isCompleted).toBe(false);
    const ev = (await queueEvents(anvil.url, stack.addresses.taskQueue)).filter(
      (e) => e.activityId === id && e.name !== 'ActivityEnqueued',
    );
    expect(ev.filter((e) => e.name === 'ActivityCompleted' || e.name === 'ActivityFailed')).toEqual([]);
    // Every heartbeat landed within the timeout of the previous claim/heartbeat: none after expiry.
    for (let i = 1; i < ev.length; i++) expect(ev[i]!.timestamp - ev[i - 1]!.timestamp).toBeLessThanOrEqual(4);
    const lastAlive = ev[ev.length - 1]!.timestamp;
    // No transaction naming this activity was mined after its expiry, and nothing reverted.
    const txs = (await walletTxs(anvil.url, [worker.address])).get(worker.address.toLowerCase()) ?? [];
    expect(failedCalls(txs)).toEqual([]);
    const after = decodedCalls(txs).filter((c) => c.timestamp > lastAlive + 4 && c.ids.includes(id));
    expect(after.map((c) => `${c.fn}@${c.blockNumber}`)).toEqual([]);
    await expectLaneMatchesChain(sb, anvil.url, worker.address);
  }, 90_000);
});
