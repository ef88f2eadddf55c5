/**
 * Group `heartbeat` (1 s blocks): heartbeat_margin_min_ratio, heartbeat_margin_min_ratio_conf12, recovery_1000_s.
 *
 * 1,000 activities with a 30 s on-chain heartbeat timeout (wcp heartbeats every 10 s: a third of it, the most it
 * uses), claimed by dist/wcp and running in the bench executor process (2 h tasks). Liveness proofs are chain
 * truth: each activity's ActivityClaimed block and every ActivityHeartbeat block, by block timestamp. The margin is
 * min over activities of (timeout − largest gap between consecutive proofs, or from the last proof to the end of
 * the phase) ÷ timeout.
 *  Phase A (confirmations 1, the profile's): from the claims through a SIGKILL placed 8 s after a heartbeat round
 *  was first mined (the worst moment: the next round was due ~2 s later) and the restart on the same store (its
 *  startup scan), then 25 s more. recovery_1000_s: that SIGKILL → the block holding the last of the 1,000's first
 *  heartbeat after it was first served by the node (head polled every 20 ms).
 *  Phase B: the same kill and restart, now with ethereum.confirmations = 12, then 35 s more; gaps ending in B.
 */
import { enqueueActivities } from '../lib/deploy.ts';
import { rpcBatch } from '../lib/rpc.ts';
import { sandbox, startWcp, type WcpProcess } from '../lib/wcp-process.ts';
import { type BenchGroup, type Figure, nowMs, round, sleep } from './common.ts';
import {
  benchEnv,
  blockTimes,
  type ChainLog,
  getLogs,
  logId,
  startExecProc,
  startWorld,
  keepOutput,
  stopChild,
  stopWcp,
  watchBlocks,
} from './world.ts';

const HELD = 1000;
const TIMEOUT_S = 30;
const KILL_AFTER_ROUND_MS = 8000;

export const heartbeat: BenchGroup = {
  name: 'heartbeat',
  issue: 12,
  async run(ctx) {
    const world = await startWorld({ blockTime: 1 });
    const watch = watchBlocks(world.anvil.url, 20);
    const exec = await startExecProc(HELD + 100, 0);
    const sb = sandbox();
    const url = world.anvil.url;
    const tqAddr = world.stack.addresses.taskQueue;
    const mine = `0x${world.wallet.address.slice(2).toLowerCase().padStart(64, '0')}`;
    const base = { WCP__SCHEDULER__MAX_INFLIGHT: String(HELD + 100) };
    let w: WcpProcess = startWcp(sb, ['run'], benchEnv(world, url, exec.port, base));
    const hbLogs = async (from: number) =>
      getLogs(url, tqAddr, [world.topics.heartbeat, null, mine], from, await world.anvil.blockNumber());
    /** SIGKILL 8 s after the next heartbeat round is first mined; restart at once with `env`; recovery measured. */
    const killAndRestart = async (layers: Record<string, string>) => {
      const from = (await world.anvil.blockNumber()) + 1;
      let roundBlock = -1;
      const deadline = Date.now() + 60_000;
      while (roundBlock < 0) {
        const logs = await hbLogs(from);
        if (logs.length >= 50) roundBlock = Math.min(...logs.map((l) => l.block));
        else if (Date.now() > deadline) throw new Error('no heartbeat round seen in 60 s');
        else await sleep(100);
      }
      // The logs can name a block the 20 ms head watcher has not seen yet: wait for it, else the kill would land
      // at the round itself (NaN delay) and the recovery figure would measure the heartbeat interval instead.
      while (!watch.seen.has(roundBlock)) await sleep(5);
      const seen = watch.seen.get(roundBlock) as number;
      await sleep(Math.max(0, seen + KILL_AFTER_ROUND_MS - nowMs()));
      const tKill = nowMs();
      await stopChild(w.proc, 'SIGKILL', 0);
      keepOutput(w);
      const killBlock = watch.head();
      // Transactions the killed process had sent carry nonces below this; only later ones are the new process's.
      const nKill = Number(
        BigInt(await world.anvil.rpc<string>('eth_getTransactionCount', [world.wallet.address, 'pending'])),
      );
      w = startWcp(sb, ['run'], benchEnv(world, url, exec.port, base, layers));
      const deadline2 = Date.now() + 120_000;
      const first = new Map<string, number>();
      const nonceOf = new Map<string, number>();
      let lastSize = 0;
      let lastProgress = Date.now();
      for (;;) {
        const logs = await hbLogs(killBlock + 1);
        const unknownTx = [...new Set(logs.map((l) => l.tx))].filter((h) => !nonceOf.has(h));
        const got = await rpcBatch<{ nonce: string }>(
          url,
          unknownTx.map((h) => ['eth_getTransactionByHash', [h]]),
        );
        for (const [i, h] of unknownTx.entries()) nonceOf.set(h, Number(BigInt((got[i] as { nonce: string }).nonce)));
        for (const l of logs)
          if ((nonceOf.get(l.tx) as number) >= nKill && !first.has(logId(l))) first.set(logId(l), l.block);
        if (first.size > lastSize) {
          lastSize = first.size;
          lastProgress = Date.now();
        }
        // Done, or none new for 3.5 heartbeat intervals (the rest expired or are not being heartbeated).
        if (first.size >= HELD || Date.now() > deadline2 || Date.now() - lastProgress > 35_000) break;
        await sleep(200);
      }
      const lastBlock = Math.max(...first.values());
      const recoveryS = ((watch.seen.get(lastBlock) as number) - tKill) / 1000;
      ctx.log(
        `SIGKILL at block ${killBlock}, ${KILL_AFTER_ROUND_MS} ms after round block ${roundBlock}; ${first.size} of ${HELD} heartbeated by the new process, the last in block ${lastBlock}: ${round(recoveryS, 2)} s`,
      );
      if (first.size < HELD) ctx.log(`${HELD - first.size} never heartbeated by the new process (none new for 35 s)`);
      return { recoveryS, killBlock, back: first.size };
    };
    /** Min margin over activities of gaps whose later end is in (fromBlock, toBlock], plus the end gap at toBlock. */
    const margin = async (
      claims: ChainLog[],
      hbs: ChainLog[],
      fromBlock: number,
      toBlock: number,
      skip = new Set<string>(),
    ) => {
      const proofs = new Map<string, number[]>();
      for (const l of [...claims, ...hbs]) {
        if (l.block > toBlock || skip.has(logId(l))) continue;
        const list = proofs.get(logId(l)) ?? [];
        proofs.set(logId(l), list);
        list.push(l.block);
      }
      const ts = await blockTimes(url, [
        toBlock,
        ...new Set([...claims, ...hbs].map((l) => l.block).filter((b) => b <= toBlock)),
      ]);
      let worst = { gap: -1, id: '', at: 0 };
      let worstAlive = -1;
      const lost = new Set<string>();
      for (const [id, blocks] of proofs) {
        const t = [...new Set(blocks)].sort((a, b) => a - b);
        t.push(toBlock);
        let mine = -1;
        for (let i = 1; i < t.length; i++) {
          if ((t[i] as number) <= fromBlock) continue;
          const gap = (ts.get(t[i] as number) as number) - (ts.get(t[i - 1] as number) as number);
          mine = Math.max(mine, gap);
          if (gap > worst.gap) worst = { gap, id, at: t[i] as number };
        }
        if (mine > TIMEOUT_S) lost.add(id);
        else worstAlive = Math.max(worstAlive, mine);
      }
      return { ratio: (TIMEOUT_S - worst.gap) / TIMEOUT_S, ...worst, n: proofs.size, lost, worstAlive };
    };
    try {
      await w.waitFor(/startup scan done; claims enabled/, 60_000);
      const ids = await enqueueActivities(world.stack, {
        queue: 'default',
        count: HELD,
        activityType: 'bench.task',
        inputRef: 'json:{"ms":7200000}',
        heartbeatTimeoutS: TIMEOUT_S,
        timeoutMs: 120_000,
      });
      const want = new Set(ids.map(String));
      const deadline = Date.now() + 180_000;
      for (;;) {
        const held = new Set((await hbLogs(0)).map(logId));
        if (held.size >= HELD) break;
        if (Date.now() > deadline || w.proc.exitCode !== null)
          throw new Error(`only ${held.size} of ${HELD} heartbeated:\n${w.output().slice(-2000)}`);
        await sleep(1000);
      }
      ctx.log(`${HELD} held and heartbeated once`);
      const a = await killAndRestart({});
      await sleep(25_000);
      const endA = await world.anvil.blockNumber();
      const b = await killAndRestart({ WCP__ETHEREUM__CONFIRMATIONS: '12' });
      await sleep(35_000);
      const endB = await world.anvil.blockNumber();
      const claims = (await getLogs(url, tqAddr, [world.topics.claimed, null, mine], 0, endB)).filter((l) =>
        want.has(logId(l)),
      );
      const hbs = (await hbLogs(0)).filter((l) => want.has(logId(l)) && l.block <= endB);
      const mA = await margin(claims, hbs, 0, endA);
      const mB = await margin(claims, hbs, endA, endB, mA.lost);
      const expired = (await getLogs(url, tqAddr, [world.topics.failed], 0, endB)).length;
      ctx.log(
        `margin A ${round(mA.ratio, 3)} (gap ${mA.gap} s, activity ${mA.id} at block ${mA.at}); B ${round(mB.ratio, 3)} (gap ${mB.gap} s at block ${mB.at}); recovery ${round(a.recoveryS, 2)} s / conf12 ${round(b.recoveryS, 2)} s`,
      );
      const how = `${HELD} activities (30 s heartbeat timeout, 2 h tasks in the bench executor process) held by dist/wcp (local profile, heartbeat_interval 10 s, max_inflight ${HELD + 100}), anvil 1 s blocks; proofs = ActivityClaimed + ActivityHeartbeat blocks' timestamps (1 s resolution)`;
      const figures: Figure[] = [
        {
          name: 'heartbeat_margin_min_ratio',
          value: round(mA.ratio, 3),
          unit: 'ratio',
          target: '≥ 0.5',
          notes: `${how}; from the claims through a SIGKILL ${KILL_AFTER_ROUND_MS / 1000} s after a round was mined, the restart on the same store with its startup scan, and 25 s more (to block ${endA}); largest gap ${mA.gap} s (activity ${mA.id}, ending at block ${mA.at}) over ${mA.n} activities; ${mA.lost.size} went longer than the 30 s timeout (expired on chain, lost), the largest gap among the others ${mA.worstAlive} s`,
        },
        {
          name: 'heartbeat_margin_min_ratio_conf12',
          value: round(mB.ratio, 3),
          unit: 'ratio',
          target: '≥ 0.5',
          notes: `then the same SIGKILL and restart with ethereum.confirmations = 12, 35 s more; gaps ending after block ${endA}: largest ${mB.gap} s (activity ${mB.id}, at block ${mB.at}) over the ${mB.n} still live after phase A; ${mB.lost.size} lost, the largest gap among the others ${mB.worstAlive} s; the restart's recovery with 12 confirmations: ${round(b.recoveryS, 2)} s (${b.back} of ${HELD} heartbeated again); ${expired} ActivityFailed`,
        },
        {
          name: 'recovery_1000_s',
          value: round(a.recoveryS, 2),
          unit: 's',
          reference: `${a.back} of ${HELD} heartbeated again${a.back < HELD ? `; ${HELD - a.back} never did (expired on chain first): the value is the last of those ${a.back}` : ''}`,
          target: '≤ 5 s',
          notes: `SIGKILL of dist/wcp with ${HELD} held (8 s after a heartbeat round was mined), restarted at once on its store → the block holding the last of the ${HELD}'s first heartbeat after the kill, first served by the node (head polled every 20 ms); includes process start, chain checks, the startup scan and the heartbeat round`,
        },
      ];
      return figures;
    } finally {
      await stopWcp(w, 5000);
      sb.cleanup();
      await watch.stop();
      await exec.stop();
      await world.stop();
    }
  },
};
