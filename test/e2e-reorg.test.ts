/**
 * A chain reorg that removes our claim (issue 5), end to end: the compiled binary (built-in no-op test
 * executor) against anvil with automine off and 1 s blocks, `ethereum.confirmations = 1` (the local default,
 * so the claim is already confirmed and acted on when it disappears: the deep-reorg case).
 *
 * wcp claims two activities A and B in one claim transaction, hands them to the executor (a slow task) and
 * heartbeats them. Then `anvil_reorg` replaces every block from the claim's on with a new branch in which
 * another worker claims A; wcp's claim and heartbeats are gone from the chain (anvil does not put the removed
 * transactions back in its pool), so its nonce falls back and B is Pending again. The local state must follow
 * the chain:
 *  - wcp notices (a reorg is logged) and does not crash;
 *  - A is no longer ours: its record ends `done: lost`, the executor drops it, and no heartbeat, completion or
 *    failure of ours for A is mined after the reorg, nor does any transaction wcp signs after that name A;
 *  - B is claimable again, so wcp re-claims it legitimately (its claim transaction, same nonce, same bytes, is
 *    sent again) and finishes it: Completed by us on chain, `done: completed`;
 *  - the lane stays consistent: every nonce used once, no gap, the records agree with the chain, nothing reverted.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { expectLaneMatchesChain } from './e2e-lifecycle-lib.ts';
import { activityViews, decodedCalls, failedCalls, queueEvents, rpcBatch, tqIface } from './support/chain.ts';
import { LIFECYCLE_SETTINGS, wcpEnv } from './support/env.ts';
import { doneRecords, laneRecords, scan } from './support/store.ts';
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
const procs: WcpProcess[] = [];

beforeAll(async () => {
  // Whole seconds: interval mining is paused around the reorg and `evm_setIntervalMining` takes whole seconds.
  anvil = await startAnvil({ blockTime: 1, accounts: 4 });
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey, heartbeatTimeoutS: 30 });
}, 60_000);
afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
  // WCP_E2E_KEEP=1 keeps the store and every run's log (wcp-N.log; the last one is the final run).
  finishSandbox('wcp', sb, procs);
}, 30_000);

describe('wcp binary: a reorg that removes our claim', () => {
  test('is detected; the local state follows the chain (A lost to the new branch, B re-claimed and finished); the lane stays consistent', async () => {
    const a = anvil as Anvil;
    const st = stack as Stack;
    const me = a.accounts[1]!;
    const rival = a.accounts[2]!;
    const meLc = me.address.toLowerCase();
    const queue = 'reorg';
    await registerWorker(st, me.address, 8);
    await registerWorker(st, rival.address, 8);
    // Both enqueued before wcp starts: its first poll finds both, so one claim tx takes both (and heartbeats
    // batch them), which keeps every re-sent transaction free of reverts.
    const [idA, idB] = (await enqueueActivities(st, { queue, count: 2 })).map(String) as [string, string];
    sb = sandbox();
    const box = sb;
    // A 12 s task: still running when the reorg comes (~2 s after the claim), done well within the test.
    const env = wcpEnv({ rpcUrl: a.url, privateKey: me.privateKey, queue }, LIFECYCLE_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '12s',
      WCP__SCHEDULER__MAX_INFLIGHT: '8',
    });
    const w = startWcp(box, ['run'], env);
    procs.push(w);

    // 1. Both claimed by us in one tx, handed to the executor, and heartbeated on chain.
    const before = await until(
      async () => {
        assertRunning(w);
        const ev = (await queueEvents(a.url, st.addresses.taskQueue)).filter((e) => e.worker === meLc);
        const claims = ev.filter((e) => e.name === 'ActivityClaimed');
        const beats = new Set(ev.filter((e) => e.name === 'ActivityHeartbeat').map((e) => e.activityId));
        const held = new Map(scan(box, 'inflight:').map((r) => [String(r.value.activity_id), String(r.value.state)]));
        return { claims, beats: [...beats], held: Object.fromEntries(held) };
      },
      (s) =>
        s.claims.length === 2 &&
        s.beats.includes(idA) &&
        s.beats.includes(idB) &&
        ['assigned', 'running'].includes(s.held[idA] ?? '') &&
        ['assigned', 'running'].includes(s.held[idB] ?? ''),
      30_000,
      'A and B claimed by us, running, heartbeated',
    );
    const claimBlock = Math.min(...before.claims.map((e) => e.blockNumber));
    expect(new Set(before.claims.map((e) => e.txHash)).size).toBe(1); // one claim tx for both

    // 2. The reorg: every block from the claim's on is replaced; in the new branch the rival claims A. Mining is
    //    paused meanwhile, so no block lands between reading the head and the reorg (the depth would miss one).
    const rivalClaim = {
      from: rival.address,
      to: st.addresses.taskQueue,
      data: tqIface.encodeFunctionData('claimActivity', [idA]),
      gas: '0x30d40',
    };
    await a.rpc('evm_setIntervalMining', [0]);
    let head: number;
    let nonceBefore: number;
    let reorgAtMs: number;
    try {
      head = await a.blockNumber();
      nonceBefore = Number(BigInt(await a.rpc<string>('eth_getTransactionCount', [me.address, 'latest'])));
      reorgAtMs = Date.now();
      await a.rpc('anvil_reorg', [head - claimBlock + 1, [[rivalClaim, 0]]]);
    } finally {
      await a.rpc('evm_setIntervalMining', [1]);
    }
    const depth = head - claimBlock + 1;
    const [viewA0, viewB0] = await activityViews(st, [idA, idB]);
    expect({ status: Number(viewA0!.status), worker: viewA0!.worker.toLowerCase() }).toEqual({
      status: 2,
      worker: rival.address.toLowerCase(),
    });
    expect(Number(viewB0!.status)).toBe(1); // Pending again
    const nonceAfter = Number(BigInt(await a.rpc<string>('eth_getTransactionCount', [me.address, 'latest'])));
    expect(nonceAfter).toBeLessThan(nonceBefore); // our claim and heartbeats are gone
    console.log(
      `[reorg] claim block ${claimBlock}, head ${head}: reorged ${depth} blocks; our chain nonce ${nonceBefore} → ${nonceAfter}`,
    );

    // 3. wcp follows: A lost, B re-claimed by us and completed; the lane drains.
    const settled = await until(
      async () => {
        assertRunning(w);
        const done = new Map(doneRecords(box).map((d) => [d.activity_id, d.outcome]));
        const [vA, vB] = await activityViews(st, [idA, idB]);
        const lane = laneRecords(box);
        const open = lane.filter((r) => r.state !== 'confirmed' && r.state !== 'failed').length;
        const [latest, pending] = await rpcBatch<string>(a.url, [
          ['eth_getTransactionCount', [me.address, 'latest']],
          ['eth_getTransactionCount', [me.address, 'pending']],
        ]);
        return {
          A: done.get(idA) ?? '-',
          B: done.get(idB) ?? '-',
          chainB: `${Number(vB!.status)}:${vB!.worker.toLowerCase() === meLc ? 'us' : vB!.worker}`,
          chainA: `${Number(vA!.status)}`,
          open,
          gap: Number(BigInt(pending as string) - BigInt(latest as string)),
          held: scan(box, 'inflight:').length,
        };
      },
      (s) =>
        s.A === 'lost' && s.B === 'completed' && s.chainB === '3:us' && s.open === 0 && s.gap === 0 && s.held === 0,
      45_000,
      'A lost, B completed by us, the lane drained',
    );
    const settledS = (Date.now() - reorgAtMs) / 1000;
    assertRunning(w);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);

    // wcp noticed: the event follower saw blocks replaced from the claim's block on; the rescan that follows
    // re-read what we hold and gave A up (rule R5: claimed by someone else); the tx manager found its confirmed
    // claim gone and re-sent it.
    const detected = linesWith(w, 'chain reorg detected');
    expect(detected.length).toBeGreaterThan(0);
    expect(Number(detected[0]?.fork_block)).toBeLessThanOrEqual(claimBlock);
    const repairedA = linesWith(w, 'repaired from chain').filter((l) => l.activity_id === idA);
    expect(repairedA.map((l) => [l.rule, l.action])).toEqual([['R5', 'markDone']]);
    // A claim sent alone, or a claim call of a batch (the wallet batches its calls: EIP-7702).
    const reopened = linesWith(w, /^a confirmed transaction is no longer on chain/).flatMap((l) => [
      String(l.kind),
      ...String(l.calls ?? '').split(','),
    ]);
    expect(reopened).toContain('claim_batch');

    // Chain truth: A stays the rival's (nothing of ours for A after the fork); B claimed once more by us and completed.
    const events = await queueEvents(a.url, st.addresses.taskQueue);
    const afterFork = events.filter((e) => e.blockNumber >= claimBlock);
    expect(
      afterFork.filter((e) => e.activityId === idA && e.worker === meLc).map((e) => `${e.name}@${e.blockNumber}`),
    ).toEqual([]);
    const [viewA, viewB] = await activityViews(st, [idA, idB]);
    expect({ status: Number(viewA!.status), worker: viewA!.worker.toLowerCase() }).toEqual({
      status: 2,
      worker: rival.address.toLowerCase(),
    });
    expect({ status: Number(viewB!.status), worker: viewB!.worker.toLowerCase() }).toEqual({ status: 3, worker: meLc });
    const claimsB = events.filter((e) => e.name === 'ActivityClaimed' && e.activityId === idB);
    expect(claimsB.map((e) => e.worker)).toEqual([meLc]);
    expect(
      afterFork.filter((e) => e.name === 'ActivityHeartbeat' && e.activityId === idB && e.worker === meLc).length,
    ).toBeGreaterThan(0);

    // The store: A lost (to the rival), B completed, nothing held; nothing wcp signed after dropping A names A.
    const done = new Map(doneRecords(box).map((d) => [d.activity_id, d]));
    expect(done.get(idA)).toMatchObject({ outcome: 'lost' });
    expect(done.get(idB)).toMatchObject({ outcome: 'completed' });
    expect(scan(box, 'inflight:')).toEqual([]);
    const droppedAt = Number(
      (scan(box, 'done:').find((r) => String(r.value.activity_id) === idA)?.value.finished_at_ms as number) ?? 0,
    );
    const lane = scan(box, 'lane:').map(
      (r) => r.value as { nonce: number; activity_ids: string[]; created_at_ms: number; kind: string },
    );
    expect(
      lane
        .filter((r) => r.created_at_ms > droppedAt && r.activity_ids.includes(idA))
        .map((r) => `${r.kind}#${r.nonce}`),
    ).toEqual([]);

    // The lane: every nonce once, no gap, records agree with the chain, nothing reverted.
    const txs = await expectLaneMatchesChain(box, a.url, me.address);
    expect(failedCalls(txs)).toEqual([]);
    console.log(
      `[reorg] settled ${settledS.toFixed(1)} s after the reorg: ${JSON.stringify(settled)}; ${txs.length} txs: ` +
        decodedCalls(txs)
          .map((c) => `${c.nonce}:${c.fn}(${c.ids.join(',')})@${c.blockNumber}`)
          .join(' '),
    );
  }, 120_000);
});
