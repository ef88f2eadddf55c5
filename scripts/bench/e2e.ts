/**
 * Group `e2e` (1 s blocks): e2e_activities_per_s beside e2e_chain_bound_activities_per_s,
 * gas_per_completed_activity, gas_wasted_share, then the memory soak: rss_growth_mb_per_h.
 *
 * dist/wcp (claim mode, local profile, max_inflight 256) with the bench executor in its own process (256 slots,
 * 0 ms tasks). N one-step workflows are started at once; every figure comes from chain truth: the wallet's first
 * ActivityClaimed block to the N-th ActivityCompleted block (block timestamps), the wallet's transactions and
 * receipts for gas. Then the same process runs a steady trickle of workflows for `--soak-minutes` while its VmRSS,
 * RssAnon and RssFile are sampled every 5 s; each growth is fitted to each minute's lowest sample (see the soak
 * below), per hour and, at the soak's rate, per 100k activities (the `soak` group measures that directly).
 */
import { startWorkflows } from '../lib/deploy.ts';
import { sandbox, startWcp } from '../lib/wcp-process.ts';
import {
  type BenchGroup,
  type Figure,
  median,
  round,
  rssParts,
  rssSplitMb,
  sleep,
  slope,
  windowMinima,
} from './common.ts';
import {
  benchEnv,
  blockTimes,
  getLogs,
  logId,
  startExecProc,
  startWorld,
  stopWcp,
  type WalletTx,
  walletTxs,
  type World,
} from './world.ts';

const N = 200;
const BLOCK_S = 1;
/** The lane depth of the run (the default, set explicitly so the lane bound below is computed from the truth). */
const LANE_DEPTH = 16;
const SETTINGS = { WCP__SCHEDULER__MAX_INFLIGHT: '256', WCP__TX_POLICY__MAX_IN_FLIGHT: String(LANE_DEPTH) };
const SOAK_BATCH = 4;
const SOAK_EVERY_MS = 2000;
const SOAK_SAMPLE_MS = 5000;

const pad = (a: string) => `0x${a.slice(2).toLowerCase().padStart(64, '0')}`;

/** Wallet txs by kind, and the wasted ones (reverted, claims that won nothing, heartbeats that counted none, noops). */
function classify(w: World, txs: WalletTx[]) {
  const tq = w.stack.contracts.taskQueue.interface;
  const wf = w.stack.contracts.workflowEngine.interface;
  const sel = new Map<string, string>();
  for (const f of [
    'claimActivity',
    'claimActivities',
    'heartbeat',
    'heartbeatBatch',
    'completeActivity',
    'failActivity',
  ])
    sel.set(tq.getFunction(f)?.selector as string, f);
  sel.set(wf.getFunction('resumeWorkflow')?.selector as string, 'resumeWorkflow');
  const byKind: Record<string, { n: number; gas: bigint }> = {};
  const wasted: Record<string, { n: number; gas: bigint }> = {};
  const add = (m: Record<string, { n: number; gas: bigint }>, k: string, g: bigint) => {
    const e = m[k] ?? { n: 0, gas: 0n };
    m[k] = e;
    e.n++;
    e.gas += g;
  };
  for (const t of txs) {
    const kind =
      t.to.toLowerCase() === w.wallet.address.toLowerCase() ? 'noop' : (sel.get(t.data.slice(0, 10)) ?? 'other');
    add(byKind, kind, t.gasUsed);
    const has = (topic: string) => t.logs.some((l) => l.topics[0] === topic);
    if (t.status !== 1) add(wasted, `reverted ${kind}`, t.gasUsed);
    else if (kind === 'noop') add(wasted, 'noop fill', t.gasUsed);
    else if (kind.startsWith('claim') && !has(w.topics.claimed)) add(wasted, 'claim that won nothing', t.gasUsed);
    else if (kind.startsWith('heartbeat') && !has(w.topics.heartbeat))
      add(wasted, 'heartbeat that counted none', t.gasUsed);
  }
  const total = txs.reduce((s, t) => s + t.gasUsed, 0n);
  const waste = Object.values(wasted).reduce((s, e) => s + e.gas, 0n);
  return { byKind, wasted, total, waste };
}

const fmtKinds = (m: Record<string, { n: number; gas: bigint }>) =>
  Object.entries(m)
    .map(([k, e]) => `${k} ${e.n}× ${e.gas} gas`)
    .join(', ') || 'none';

export const e2e: BenchGroup = {
  name: 'e2e',
  issue: 12,
  async run(ctx) {
    const world = await startWorld({ blockTime: BLOCK_S });
    const exec = await startExecProc(256, 0);
    const sb = sandbox();
    const url = world.anvil.url;
    const tqAddr = world.stack.addresses.taskQueue;
    const mine = pad(world.wallet.address);
    const w = startWcp(sb, ['run'], benchEnv(world, url, exec.port, SETTINGS));
    const figures: Figure[] = [];
    try {
      await w.waitFor(/startup scan done; claims enabled/, 60_000);
      const from = await world.anvil.blockNumber();
      const flows = await startWorkflows(world.stack, {
        queue: 'default',
        count: N,
        steps: 1,
        activityType: 'bench.task',
        inputRef: 'json:{}',
        timeoutMs: 120_000,
      });
      const ids = new Set(flows.map((f) => f.activityId.toString()));
      ctx.log(`${N} workflows started`);
      let completed: ReturnType<typeof logId>[] = [];
      let doneLogs: Awaited<ReturnType<typeof getLogs>> = [];
      const deadline = Date.now() + 300_000;
      while (completed.length < N) {
        if (Date.now() > deadline || w.proc.exitCode !== null)
          throw new Error(`only ${completed.length} of ${N} completed:\n${w.output().slice(-2000)}`);
        await sleep(1000);
        doneLogs = (
          await getLogs(url, tqAddr, [world.topics.completed, null, mine], from, await world.anvil.blockNumber())
        ).filter((l) => ids.has(logId(l)));
        completed = doneLogs.map(logId);
      }
      // Quiet: the wallet's pending and latest nonces equal for 3 s (the resumes of the last ones mined).
      let quietSince = Date.now();
      let lastNonce = '';
      while (Date.now() - quietSince < 3000) {
        const [p, l] = await Promise.all([
          world.anvil.rpc<string>('eth_getTransactionCount', [world.wallet.address, 'pending']),
          world.anvil.rpc<string>('eth_getTransactionCount', [world.wallet.address, 'latest']),
        ]);
        if (p !== l || p !== lastNonce) quietSince = Date.now();
        lastNonce = p;
        await sleep(250);
      }
      const head = await world.anvil.blockNumber();
      const claimLogs = (await getLogs(url, tqAddr, [world.topics.claimed, null, mine], from, head)).filter((l) =>
        ids.has(logId(l)),
      );
      const enqLogs = (await getLogs(url, tqAddr, [world.topics.enqueued], from, head)).filter((l) =>
        ids.has(logId(l)),
      );
      const firstClaim = Math.min(...claimLogs.map((l) => l.block));
      const lastDone = Math.max(...doneLogs.map((l) => l.block));
      const ts = await blockTimes(url, [firstClaim, lastDone]);
      const spanS = (ts.get(lastDone) as number) - (ts.get(firstClaim) as number) + BLOCK_S;
      const rate = N / spanS;
      const txs = await walletTxs(url, world.wallet.address, from, head);
      const c = classify(world, txs);
      const gasPer = Number(c.total) / N;
      const latest = await world.anvil.rpc<{ gasLimit: string }>('eth_getBlockByNumber', ['latest', false]);
      const gasLimit = Number(BigInt(latest.gasLimit));
      const bound = gasLimit / BLOCK_S / gasPer;
      // Where the time goes: per activity, blocks from enqueue to claim and claim to complete; the lane's use.
      const blockOf = (logs: typeof claimLogs) => new Map(logs.map((l) => [logId(l), l.block]));
      const eb = blockOf(enqLogs);
      const cb = blockOf(claimLogs);
      const db = blockOf(doneLogs);
      const toClaim = [...ids].map((id) => (cb.get(id) ?? Number.NaN) - (eb.get(id) ?? Number.NaN));
      const toDone = [...ids].map((id) => (db.get(id) ?? Number.NaN) - (cb.get(id) ?? Number.NaN));
      const perBlock = new Map<number, number>();
      for (const t of txs)
        if (t.block >= firstClaim && t.block <= lastDone) perBlock.set(t.block, (perBlock.get(t.block) ?? 0) + 1);
      const blocksSpan = lastDone - firstClaim + 1;
      const txInSpan = [...perBlock.values()].reduce((a, b) => a + b, 0);
      const gasInSpan = txs
        .filter((t) => t.block >= firstClaim && t.block <= lastDone)
        .reduce((s, t) => s + t.gasUsed, 0n);
      const where = `${blocksSpan} blocks, the wallet's txs ${txInSpan} (${round(txInSpan / blocksSpan, 1)}/block, max ${Math.max(...perBlock.values())}/block), gas used ${round((Number(gasInSpan) / blocksSpan / gasLimit) * 100, 1)}% of the block gas limit; blocks enqueue→claim median ${median(toClaim)} max ${Math.max(...toClaim)}, claim→complete median ${median(toDone)} max ${Math.max(...toDone)}`;
      ctx.log(
        `e2e ${round(rate, 2)}/s over ${spanS} s; ${where}; gas/activity ${Math.round(gasPer)}; by kind ${fmtKinds(c.byKind)}; wasted ${fmtKinds(c.wasted)}`,
      );
      figures.push(
        {
          name: 'e2e_activities_per_s',
          value: round(rate, 2),
          unit: 'activities/s',
          reference: `e2e_chain_bound_activities_per_s ${round(bound, 1)} (ratio ${round(rate / bound, 3)})`,
          target: 'ratio ≥ 0.8',
          notes: `${N} one-step workflows (bench.task, 0 ms) started together, dist/wcp claim mode (local profile: claim_batch 8, tx max_in_flight ${LANE_DEPTH}, receipt_poll 250 ms; max_inflight 256), bench executor in its own process (256 slots), anvil 1 s blocks; from the wallet's first ActivityClaimed block to the ${N}-th ActivityCompleted block, block timestamps (${spanS} s incl. the last block). ${where}`,
        },
        {
          // What one nonce lane allows: at most LANE_DEPTH txs unmined, each freed when its block is seen.
          name: 'e2e_lane_bound_activities_per_s',
          value: round(LANE_DEPTH / BLOCK_S / (txInSpan / N), 2),
          unit: 'activities/s',
          reference: `measured ${round(rate, 2)}/s = ${round(rate / (LANE_DEPTH / BLOCK_S / (txInSpan / N)), 3)} of it`,
          notes: `tx_policy.max_in_flight ${LANE_DEPTH} ÷ block time ${BLOCK_S} s ÷ the wallet's txs per activity in the span (${txInSpan} ÷ ${N} = ${round(txInSpan / N, 2)}: each activity needs its own complete and resume, the contracts have no batch form of either)`,
        },
        {
          name: 'e2e_chain_bound_activities_per_s',
          value: round(bound, 1),
          unit: 'activities/s',
          notes: `block gas limit ${gasLimit} ÷ block time ${BLOCK_S} s ÷ gas_per_completed_activity ${Math.round(gasPer)}`,
        },
        {
          name: 'gas_per_completed_activity',
          value: Math.round(gasPer),
          unit: 'gas',
          notes: `every transaction of the wallet mined from the start of the run until its lane was quiet (receipts' gasUsed, ${txs.length} txs, ${c.total} gas) ÷ ${N} completed; by kind: ${fmtKinds(c.byKind)}`,
        },
        {
          name: 'gas_wasted_share',
          value: round(Number(c.waste) / Number(c.total), 4),
          unit: 'share of gas',
          reference: `${c.waste} of ${c.total} gas`,
          target: '≤ 0.01',
          notes: `reverted txs, claim txs with no ActivityClaimed, heartbeat txs with no ActivityHeartbeat, noop fills (to self), same receipts: ${fmtKinds(c.wasted)}. Ids skipped inside a claim batch that won others are not counted (~3k gas each)`,
        },
      );

      // ---- soak ------------------------------------------------------------------------------------------
      const soakMs = ctx.soakMinutes * 60_000;
      ctx.log(`soak: ${ctx.soakMinutes} min of ${SOAK_BATCH} workflows every ${SOAK_EVERY_MS} ms`);
      const pid = w.proc.pid as number;
      const t0 = performance.now();
      /** [h, VmRSS, RssAnon, RssFile] (MB). */
      const samples: Array<[number, number, number, number]> = [];
      const take = async () => {
        const r = await rssSplitMb(pid);
        samples.push([(performance.now() - t0) / 3_600_000, r.rss, r.anon, r.file]);
      };
      let started = 0;
      let stop = false;
      const feeder = (async () => {
        while (!stop) {
          const t = performance.now();
          await startWorkflows(world.stack, {
            queue: 'default',
            count: SOAK_BATCH,
            steps: 1,
            activityType: 'bench.task',
            inputRef: 'json:{"ms":500}',
          });
          started += SOAK_BATCH;
          await sleep(Math.max(0, SOAK_EVERY_MS - (performance.now() - t)));
        }
      })();
      const soakFrom = await world.anvil.blockNumber();
      while (performance.now() - t0 < soakMs) {
        await take();
        if (w.proc.exitCode !== null) throw new Error(`wcp exited during the soak:\n${w.output().slice(-2000)}`);
        await sleep(SOAK_SAMPLE_MS);
      }
      await take();
      const endParts = await rssParts(pid);
      stop = true;
      await feeder;
      const soakDone = (
        await getLogs(url, tqAddr, [world.topics.completed, null, mine], soakFrom, await world.anvil.blockNumber())
      ).length;
      const hours = (samples[samples.length - 1]?.[0] ?? 0) - (samples[0]?.[0] ?? 0);
      const perHour = soakDone / Math.max(hours, 1e-9);
      const warm = samples.filter(([h]) => h * 60 >= ctx.soakMinutes * 0.2);
      // Each figure is fitted to the low point of each minute: what the process retains. A fit to every sample
      // measures when the collector happened to run (a sample before a collection can hold 200 MB of garbage); it
      // is reported beside it, with the peak.
      const floorFit = (i: 1 | 2 | 3) => {
        const floors = windowMinima(
          warm.map((x) => [x[0], x[i]] as const),
          1 / 60,
        );
        return {
          floors,
          growth: slope(
            floors.map((f) => f[0]),
            floors.map((f) => f[1]),
          ),
        };
      };
      const rss = floorFit(1);
      const anon = floorFit(2);
      const file = floorFit(3);
      const everySample = slope(
        warm.map((x) => x[0]),
        warm.map((x) => x[1]),
      );
      const peak = Math.max(...samples.map((x) => x[1]));
      const per100k = (mbPerH: number) => round((mbPerH / perHour) * 100_000, 1);
      const floorsText = (f: Array<[number, number]>) => f.map((x) => round(x[1], 0)).join(' ');
      const scope = `soak of ${ctx.soakMinutes} min${ctx.soakMinutes === 10 ? '' : ' (set with --soak-minutes; the target is for 10)'} on the same process after the e2e run: ${SOAK_BATCH} one-step workflows (500 ms tasks) every ${SOAK_EVERY_MS / 1000} s, ${started} started, ${soakDone} completed on chain (${Math.round(perHour)}/h); /proc/<pid>/status every ${SOAK_SAMPLE_MS / 1000} s; after the first 20% (warm-up) the least-squares slope of each minute's lowest sample`;
      ctx.log(
        `soak rss ${samples.map((x) => round(x[1], 0)).join(' ')} MB; anon ${samples.map((x) => round(x[2], 0)).join(' ')}; file ${samples.map((x) => round(x[3], 0)).join(' ')}; ${soakDone} completed`,
      );
      figures.push(
        {
          name: 'rss_growth_mb_per_h',
          value: round(rss.growth, 2),
          unit: 'MB/h',
          target: '≤ 1 MB/h over a 10-minute soak',
          notes: `VmRSS; ${scope} (minute floors: ${floorsText(rss.floors)} MB); per 100k activities at this rate: ${per100k(rss.growth)} MB; fitted to every sample instead: ${round(everySample, 1)} MB/h; peak ${round(peak, 0)} MB; ${round(samples[0]?.[1] ?? Number.NaN, 1)} MB at the start, ${round(samples[samples.length - 1]?.[1] ?? Number.NaN, 1)} at the end (${endParts}); all samples: ${samples.map((x) => round(x[1], 0)).join(' ')} MB`,
        },
        {
          name: 'rss_anon_growth_mb_per_h',
          value: round(anon.growth, 2),
          unit: 'MB/h',
          reference: `${per100k(anon.growth)} MB per 100k activities at ${Math.round(perHour)} activities/h`,
          notes: `RssAnon (heaps, malloc); ${scope} (minute floors: ${floorsText(anon.floors)} MB)`,
        },
        {
          name: 'rss_file_growth_mb_per_h',
          value: round(file.growth, 2),
          unit: 'MB/h',
          reference: `${per100k(file.growth)} MB per 100k activities at ${Math.round(perHour)} activities/h`,
          notes: `RssFile (the binary's pages, the store's map); ${scope} (minute floors: ${floorsText(file.floors)} MB)`,
        },
      );
      return figures;
    } finally {
      await stopWcp(w);
      sb.cleanup();
      await exec.stop();
      await world.stop();
    }
  },
};
