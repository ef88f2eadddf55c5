/**
 * Reconciler end to end, crash recovery (the compiled binary against anvil):
 *  - the store is deleted while 50 activities are in flight (kill -9): the restart rebuilds all 50 from chain,
 *    claims none of them again, resumes their heartbeats before any heartbeat timeout lapses, and finishes them;
 *  - replaying the same window twice (two restarts over an unchanged chain) changes no record and sends nothing.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack, startWorkflows } from '../scripts/lib/deploy.ts';
import { activityViews, blockNumber, CLAIM_FNS, queueEvents, walletCalls } from './support/chain.ts';
import { RECONCILER_SETTINGS, wcpEnv } from './support/env.ts';
import { doneById, dumpStore, inflightById, scan } from './support/store.ts';
import { sleep, until, waitAllCompleted } from './support/wait.ts';
import { linesWith, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let anvil: Anvil | undefined;
let stack: Stack | undefined;
let sb: Sandbox | undefined;
const procs: WcpProcess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  stack?.destroy();
  await anvil?.stop();
  sb?.cleanup();
  anvil = undefined;
  stack = undefined;
  sb = undefined;
}, 60_000);

describe('wcp binary: reconciler crash recovery', () => {
  test('store deleted with 50 activities in flight: all rebuilt from chain, none claimed twice, heartbeats resume in time, all finish', async () => {
    const HB_TIMEOUT_S = 20;
    anvil = await startAnvil({ blockTime: 1 });
    stack = await deployStack({
      rpcUrl: anvil.url,
      deployerKey: anvil.accounts[0]!.privateKey,
      heartbeatTimeoutS: HB_TIMEOUT_S,
    });
    const me = anvil.accounts[1]!;
    await registerWorker(stack, me.address, 64);
    sb = sandbox();
    const ids = (await enqueueActivities(stack, { queue: 'default', count: 50 })).map(String);

    // Run 1: the executor never finishes (2 min per task), so all 50 stay claimed and heartbeated.
    const env1 = wcpEnv({ rpcUrl: anvil.url, privateKey: me.privateKey }, RECONCILER_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '120s',
    });
    const w1 = startWcp(sb, ['run'], env1);
    procs.push(w1);
    await until(
      () =>
        [...inflightById(sb as Sandbox).values()].filter((r) => r.state === 'assigned' || r.state === 'running').length,
      (n) => n === 50,
      60_000,
      '50 activities dispatched to the executor',
    );
    await until(
      async () => {
        const hb = (await queueEvents(anvil!.url, stack!.addresses.taskQueue)).filter(
          (e) => e.name === 'ActivityHeartbeat',
        );
        return new Set(hb.map((e) => e.activityId)).size;
      },
      (n) => n === 50,
      30_000,
      'a heartbeat on chain for each of the 50',
    );
    const views1 = await activityViews(stack, ids);
    expect(views1.every((v) => Number(v.status) === 2 && v.worker.toLowerCase() === me.address.toLowerCase())).toBe(
      true,
    );

    // Crash and lose the disk.
    w1.proc.kill('SIGKILL');
    expect(await w1.exited).toBe('SIGKILL');
    rmSync(sb.dbPath, { force: true });
    rmSync(`${sb.dbPath}-lock`, { force: true });
    // Down for a while (a third of the heartbeat timeout): the new run must heartbeat before the rest lapses.
    await sleep(6_000);
    const restartBlock = (await blockNumber(anvil.url)) + 1;

    // Run 2: same wallet, empty store, a short task so they finish.
    const w2 = startWcp(sb, ['run'], { ...env1, WCP__EXECUTOR__NOOP_DELAY: '8s' });
    procs.push(w2);
    const rebuilt = await until(
      () => inflightById(sb as Sandbox),
      (m) => ids.every((id) => m.has(id)),
      30_000,
      'all 50 inflight records rebuilt',
    );
    for (const id of ids) {
      const r = rebuilt.get(id) as Record<string, unknown>;
      expect(r.activity_type).toBe('echo');
      expect(r.heartbeat_timeout_s).toBe(HB_TIMEOUT_S);
      expect(typeof r.expires_at_s).toBe('number');
    }
    await waitAllCompleted(sb, stack, ids, me.address, 60_000, w2);

    // Chain truth.
    const events = await queueEvents(anvil.url, stack.addresses.taskQueue);
    const claims = events.filter((e) => e.name === 'ActivityClaimed');
    expect(claims.length).toBe(50);
    expect(new Set(claims.map((e) => e.activityId))).toEqual(new Set(ids));
    expect(claims.every((e) => e.worker === me.address.toLowerCase())).toBe(true);
    expect(claims.every((e) => e.blockNumber < restartBlock)).toBe(true);
    // The second run sent no claim at all.
    const calls2 = await walletCalls(anvil.url, me.address, stack.addresses.taskQueue, restartBlock);
    expect(calls2.filter((c) => CLAIM_FNS.has(c.fn))).toEqual([]);
    // Its heartbeats covered all 50, and no heartbeat gap ever exceeded the timeout: claim, heartbeats and the
    // completion of each activity are never more than HB_TIMEOUT_S apart on chain.
    const hbAfter = new Set(
      events.filter((e) => e.name === 'ActivityHeartbeat' && e.blockNumber >= restartBlock).map((e) => e.activityId),
    );
    expect([...hbAfter].sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const ts = events.filter((e) => e.activityId === id && e.name !== 'ActivityEnqueued').map((e) => e.timestamp);
      const gaps = ts.slice(1).map((t, i) => t - (ts[i] as number));
      expect(Math.max(...gaps)).toBeLessThanOrEqual(HB_TIMEOUT_S);
      expect(events.filter((e) => e.activityId === id && e.name === 'ActivityCompleted').length).toBe(1);
    }
    const done = doneById(sb);
    expect(ids.every((id) => done.get(id)?.outcome === 'completed')).toBe(true);
    expect(scan(sb, 'inflight:')).toEqual([]);
    // The rebuild came from the chain scan (rule R3a: claimed by us, no local record), one per activity.
    const r3a = linesWith(w2, 'repaired from chain')
      .filter((l) => l.rule === 'R3a')
      .map((l) => String(l.activity_id));
    expect(new Set(r3a)).toEqual(new Set(ids));
    w2.proc.kill('SIGTERM');
    expect(await w2.exited).toBe(0);
  }, 150_000);

  test('replaying the same window twice changes nothing and sends nothing', async () => {
    // Automine: blocks appear only when a transaction is mined, so an unchanged head proves nothing was sent.
    anvil = await startAnvil();
    stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
    const me = anvil.accounts[1]!;
    await registerWorker(stack, me.address, 16);
    sb = sandbox();
    const solo = (await enqueueActivities(stack, { queue: 'default', count: 6 })).map(String);
    const wfs = await startWorkflows(stack, { queue: 'default', count: 2, steps: 2 });
    const env = wcpEnv({ rpcUrl: anvil.url, privateKey: me.privateKey }, RECONCILER_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '200ms',
    });

    // The run that settles: 6 standalone activities and 2 two-step workflows (4 activities), all completed.
    const w0 = startWcp(sb, ['run'], env);
    procs.push(w0);
    await until(
      () => [...doneById(sb as Sandbox).values()].filter((d) => d.outcome === 'completed').length,
      (n) => n === 10,
      60_000,
      '10 activities completed',
    );
    await until(
      () => scan(sb as Sandbox, 'inflight:').length,
      (n) => n === 0,
      10_000,
      'nothing in flight',
    );
    w0.proc.kill('SIGTERM');
    expect(await w0.exited).toBe(0);
    const allIds = [...doneById(sb).keys()];
    expect(allIds).toEqual(expect.arrayContaining([...solo, ...wfs.map((w) => String(w.activityId))]));

    const before = dumpStore(sb);
    const head0 = await blockNumber(anvil.url);
    const nonce0 = await stack.provider.getTransactionCount(me.address, 'pending');
    const windows: Array<[unknown, unknown]> = [];
    for (let replay = 1; replay <= 2; replay++) {
      const w = startWcp(sb, ['run'], env);
      procs.push(w);
      await w.waitFor(/startup scan done; claims enabled/, 30_000);
      // Let the manager, follower and lifecycle loop run over the replayed facts for a while.
      await sleep(3_000);
      w.proc.kill('SIGTERM');
      expect(await w.exited).toBe(0);
      const scans = linesWith(w, 'reconciler scan').filter((l) => l.reason === 'startup');
      expect(scans.length).toBe(1);
      // The scan saw every activity of ours (10 facts) and repaired none of them.
      expect(scans[0]?.facts).toBe(10);
      expect(linesWith(w, 'repaired from chain')).toEqual([]);
      windows.push([scans[0]?.from_block, scans[0]?.to_block]);
      // Every record identical, timestamps included: nothing was rewritten.
      expect(dumpStore(sb)).toEqual(before);
      expect(await blockNumber(anvil.url)).toBe(head0);
      expect(await stack.provider.getTransactionCount(me.address, 'pending')).toBe(nonce0);
    }
    // Both replays covered the same window.
    expect(windows[0]).toEqual(windows[1] as [unknown, unknown]);
    expect(windows[0]?.[1]).toBe(head0);
  }, 120_000);
});
