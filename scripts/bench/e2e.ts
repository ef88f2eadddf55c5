/**
 * Group `e2e` (1 s blocks): e2e_activities_per_s beside e2e_chain_bound_activities_per_s, gas_per_completed_activity,
 * gas_wasted_share (the batch path: the wallet delegated to the batch executor, EIP-7702); the same on the per-call
 * fallback (a chain without type-4 transactions: `anvil --hardfork cancun`); e2e_three_workers_activities_per_s
 * (three wcp, three wallets, one queue); then the memory soak on the batch run's process: rss_growth_mb_per_h.
 *
 * Each run: dist/wcp (claim mode, local profile, max_inflight 256) per wallet with the bench executor in its own
 * process (256 slots, 0 ms tasks). N one-step workflows are on chain before wcp starts; every figure comes from chain
 * truth: the first ActivityClaimed block to the N-th ActivityCompleted block (block timestamps), the wallets'
 * transactions and receipts for gas, and the node's call tracer for the gas of each call inside a batch. Then the
 * batch run's process runs a steady trickle of workflows for `--soak-minutes` while its VmRSS, RssAnon and RssFile
 * are sampled every 5 s; each growth is fitted to each minute's lowest sample (see the soak below), per hour and, at
 * the soak's rate, per 100k activities (the `soak` group measures that directly).
 */
import { startWorkflows } from '../lib/deploy.ts';
import type { DevAccount } from '../lib/anvil.ts';
import { type Sandbox, sandbox, startWcp, type WcpProcess } from '../lib/wcp-process.ts';
import {
  type BenchContext,
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
  benchEnvFor,
  blockTimes,
  type ExecProc,
  getLogs,
  logId,
  startExecProc,
  startWorld,
  stopWcp,
  txCalls,
  type WalletTx,
  walletTxs,
  type World,
} from './world.ts';

/** Activities of the batch and per-call runs; the three-worker run takes the same number. */
const N = 600;
const BLOCK_S = 1;
/** The lane depth of the run (the default, set explicitly so the lane bound below is computed from the truth). */
const LANE_DEPTH = 16;
const SETTINGS = {
  WCP__SCHEDULER__MAX_INFLIGHT: '256',
  WCP__SCHEDULER__CLAIM_BATCH: '64',
  WCP__TX_POLICY__MAX_IN_FLIGHT: String(LANE_DEPTH),
  // The batch path where the chain has type-4 (opt-in for now); on cancun the same setting falls back per call.
  WCP__TX_POLICY__BATCH: 'auto',
};
const SOAK_BATCH = 4;
const SOAK_EVERY_MS = 2000;
const SOAK_SAMPLE_MS = 5000;

const pad = (a: string) => `0x${a.slice(2).toLowerCase().padStart(64, '0')}`;

type Tally = Record<string, { n: number; gas: bigint }>;
const add = (m: Tally, k: string, g: bigint) => {
  const e = m[k] ?? { n: 0, gas: 0n };
  m[k] = e;
  e.n++;
  e.gas += g;
};

/**
 * The wallets' gas by call kind, and the wasted part: failed calls (a reverted tx, or a call the batch executor
 * reported failed), claims that won nothing (a lost race), heartbeats that counted none, noop fills. A batch's
 * own gas beyond its calls' is its `overhead` (not waste: what one envelope costs instead of one per call); the
 * one delegation per wallet is its own kind.
 */
async function classify(w: World, url: string, txs: WalletTx[]) {
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
  const { calls, overhead } = await txCalls(url, txs);
  const byKind: Tally = {};
  const wasted: Tally = {};
  for (const c of calls) {
    const self = c.to === c.tx.from && c.data === '0x';
    const kind = self ? (c.tx.type === 4 ? 'delegation' : 'noop') : (sel.get(c.data.slice(0, 10)) ?? 'other');
    add(byKind, kind, c.gasUsed);
    // This call's own events: the receipt's events naming its ids for this wallet.
    const ids = kind.startsWith('claim') || kind.startsWith('heartbeat') ? idsOf(tq, c.data) : [];
    const named = (topic: string) =>
      c.tx.logs.some(
        (l) =>
          l.topics[0] === topic &&
          l.topics[2]?.toLowerCase() === pad(c.tx.from) &&
          ids.includes(BigInt(l.topics[1] as string).toString()),
      );
    if (!c.ok || (c.tx.status !== 1 && c.index === 0)) add(wasted, `failed ${kind}`, c.gasUsed);
    else if (kind === 'noop') add(wasted, 'noop fill', c.gasUsed);
    else if (kind.startsWith('claim') && !named(w.topics.claimed)) add(wasted, 'claim that won nothing', c.gasUsed);
    else if (kind.startsWith('heartbeat') && !named(w.topics.heartbeat))
      add(wasted, 'heartbeat that counted none', c.gasUsed);
  }
  if (overhead > 0n)
    byKind['batch overhead'] = { n: txs.filter((t) => t.to === t.from && t.data !== '0x').length, gas: overhead };
  const total = txs.reduce((s, t) => s + t.gasUsed, 0n);
  const waste = Object.values(wasted).reduce((s, e) => s + e.gas, 0n);
  return { byKind, wasted, total, waste };
}

/** The activity ids a claim or heartbeat calldata names. */
function idsOf(tq: World['stack']['contracts']['taskQueue']['interface'], data: string): string[] {
  const p = tq.parseTransaction({ data });
  const a = p?.args[0];
  return Array.isArray(a) || (a && typeof a === 'object' && 'length' in a)
    ? [...(a as bigint[])].map(String)
    : [String(a)];
}

const fmtKinds = (m: Tally) =>
  Object.entries(m)
    .map(([k, e]) => `${k} ${e.n}× ${e.gas} gas`)
    .join(', ') || 'none';

/** One throughput run's result (see `throughput`). */
interface Run {
  rate: number;
  spanS: number;
  bound: number;
  gasPer: number;
  gasLimit: number;
  txInSpan: number;
  where: string;
  c: Awaited<ReturnType<typeof classify>>;
  txCount: number;
  procs: WcpProcess[];
  execs: ExecProc[];
  sandboxes: Sandbox[];
}

/**
 * `n` one-step workflows started at once on `world` with one wcp per wallet of `wallets` already running (each
 * with its executor): from the first ActivityClaimed block to the n-th ActivityCompleted block (any wallet). The
 * caller stops the processes.
 */
async function throughput(
  ctx: BenchContext,
  world: World,
  wallets: DevAccount[],
  label: string,
  n: number,
): Promise<Run> {
  const url = world.anvil.url;
  const tqAddr = world.stack.addresses.taskQueue;
  const execs: ExecProc[] = [];
  const procs: WcpProcess[] = [];
  const sandboxes: Sandbox[] = [];
  // The work is on chain before wcp starts: the blocks that carry the n enqueues (many blocks' gas) are not part of
  // what is measured, and compete with nothing of wcp's.
  const from = await world.anvil.blockNumber();
  const flows = await startWorkflows(world.stack, {
    queue: 'default',
    count: n,
    steps: 1,
    activityType: 'bench.task',
    inputRef: 'json:{}',
    timeoutMs: 300_000,
  });
  const ids = new Set(flows.map((f) => f.activityId.toString()));
  for (const wallet of wallets) {
    const exec = await startExecProc(256, 0);
    execs.push(exec);
    const sb = sandbox();
    sandboxes.push(sb);
    procs.push(startWcp(sb, ['run'], benchEnvFor(world, wallet, url, exec.port, SETTINGS)));
  }
  ctx.log(`${label}: ${n} workflows on chain; wcp started`);
  let doneLogs: Awaited<ReturnType<typeof getLogs>> = [];
  const deadline = Date.now() + 600_000;
  while (doneLogs.length < n) {
    const dead = procs.find((w) => w.proc.exitCode !== null);
    if (Date.now() > deadline || dead)
      throw new Error(
        `${label}: only ${doneLogs.length} of ${n} completed:\n${(dead ?? procs[0])?.output().slice(-2000)}`,
      );
    await sleep(1000);
    doneLogs = (await getLogs(url, tqAddr, [world.topics.completed], from, await world.anvil.blockNumber())).filter(
      (l) => ids.has(logId(l)),
    );
  }
  // Quiet: every wallet's pending and latest nonces equal for 3 s (the resumes of the last ones mined).
  let quietSince = Date.now();
  let last = '';
  while (Date.now() - quietSince < 3000) {
    const nonces = await Promise.all(
      wallets.flatMap((wl) => [
        world.anvil.rpc<string>('eth_getTransactionCount', [wl.address, 'pending']),
        world.anvil.rpc<string>('eth_getTransactionCount', [wl.address, 'latest']),
      ]),
    );
    const key = nonces.join(',');
    const even = nonces.every((x, i) => i % 2 === 1 || x === nonces[i + 1]);
    if (!even || key !== last) quietSince = Date.now();
    last = key;
    await sleep(250);
  }
  const head = await world.anvil.blockNumber();
  const claimLogs = (await getLogs(url, tqAddr, [world.topics.claimed], from, head)).filter((l) => ids.has(logId(l)));
  const enqLogs = (await getLogs(url, tqAddr, [world.topics.enqueued], from, head)).filter((l) => ids.has(logId(l)));
  const firstClaim = Math.min(...claimLogs.map((l) => l.block));
  const lastDone = Math.max(...doneLogs.map((l) => l.block));
  const ts = await blockTimes(url, [firstClaim, lastDone]);
  const spanS = (ts.get(lastDone) as number) - (ts.get(firstClaim) as number) + BLOCK_S;
  const txs = (await Promise.all(wallets.map((wl) => walletTxs(url, wl.address, from, head)))).flat();
  const c = await classify(world, url, txs);
  const gasPer = Number(c.total) / n;
  const latest = await world.anvil.rpc<{ gasLimit: string }>('eth_getBlockByNumber', ['latest', false]);
  const gasLimit = Number(BigInt(latest.gasLimit));
  // Where the time goes: per activity, blocks from enqueue to claim and claim to complete; the lanes' use.
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
  const gasInSpan = txs.filter((t) => t.block >= firstClaim && t.block <= lastDone).reduce((s, t) => s + t.gasUsed, 0n);
  const where = `${blocksSpan} blocks, the wallets' txs ${txInSpan} (${round(txInSpan / blocksSpan, 1)}/block, max ${Math.max(...perBlock.values())}/block), gas used ${round((Number(gasInSpan) / blocksSpan / gasLimit) * 100, 1)}% of the block gas limit; blocks enqueue→claim median ${median(toClaim)} max ${Math.max(...toClaim)}, claim→complete median ${median(toDone)} max ${Math.max(...toDone)}`;
  const rate = n / spanS;
  const bound = gasLimit / BLOCK_S / gasPer;
  ctx.log(
    `${label}: ${round(rate, 2)}/s over ${spanS} s; ${where}; gas/activity ${Math.round(gasPer)}; by kind ${fmtKinds(c.byKind)}; wasted ${fmtKinds(c.wasted)}`,
  );
  return { rate, spanS, bound, gasPer, gasLimit, txInSpan, where, c, txCount: txs.length, procs, execs, sandboxes };
}

async function stopRun(r: Run): Promise<void> {
  for (const w of r.procs) await stopWcp(w);
  for (const sb of r.sandboxes) sb.cleanup();
  for (const e of r.execs) await e.stop();
}

const runNotes = (label: string, r: Run, n: number) =>
  `${label}: ${n} one-step workflows (bench.task, 0 ms) on chain before wcp starts, dist/wcp claim mode (local profile; claim_batch 64, tx max_in_flight ${LANE_DEPTH}, max_inflight 256), bench executor in its own process (256 slots), anvil ${BLOCK_S} s blocks; from the first ActivityClaimed block to the ${n}-th ActivityCompleted block, block timestamps (${r.spanS} s incl. the last block). ${r.where}`;

export const e2e: BenchGroup = {
  name: 'e2e',
  issue: 21,
  async run(ctx) {
    const figures: Figure[] = [];
    // ---- the per-call fallback: a chain without type-4 transactions -------------------------------------------
    const only = process.env.WCP_BENCH_E2E_ONLY; // development: 'batch' runs the batch path alone
    const old = await startWorld({ blockTime: BLOCK_S, hardfork: 'cancun' });
    let perCall: Run | undefined;
    try {
      perCall = await throughput(ctx, old, [old.wallet], 'per-call (cancun)', only ? 10 : N / 3);
    } finally {
      if (perCall) await stopRun(perCall);
      await old.stop();
    }
    // ---- three workers, three wallets, one queue (batch path) ---------------------------------------------------
    const three = await startWorld({ blockTime: BLOCK_S, workers: 3 });
    let r3: Run | undefined;
    try {
      r3 = await throughput(ctx, three, three.wallets, 'three workers', only ? 10 : N);
    } finally {
      if (r3) await stopRun(r3);
      await three.stop();
    }
    // ---- the batch path, one worker; its process then runs the soak --------------------------------------------
    const world = await startWorld({ blockTime: BLOCK_S });
    const url = world.anvil.url;
    const tqAddr = world.stack.addresses.taskQueue;
    const mine = pad(world.wallet.address);
    let r: Run | undefined;
    try {
      r = await throughput(ctx, world, [world.wallet], 'batch', N);
      const w = r.procs[0] as WcpProcess;
      const laneBound = LANE_DEPTH / BLOCK_S / (r.txInSpan / N);
      figures.push(
        {
          name: 'e2e_activities_per_s',
          value: round(r.rate, 2),
          unit: 'activities/s',
          reference: `e2e_chain_bound_activities_per_s ${round(r.bound, 1)} (ratio ${round(r.rate / r.bound, 3)})`,
          target: 'ratio ≥ 0.8',
          notes: runNotes('batch path (wallet delegated to the batch executor, EIP-7702)', r, N),
        },
        {
          name: 'e2e_per_call_activities_per_s',
          value: round(perCall.rate, 2),
          unit: 'activities/s',
          reference: `its chain bound ${round(perCall.bound, 1)} (ratio ${round(perCall.rate / perCall.bound, 3)}); its lane bound ${round(LANE_DEPTH / BLOCK_S / (perCall.txInSpan / (N / 3)), 2)}`,
          notes: `${runNotes('per-call fallback (anvil --hardfork cancun: no type-4, one tx per call)', perCall, N / 3)}; gas/activity ${Math.round(perCall.gasPer)} (${fmtKinds(perCall.c.byKind)}), wasted ${round(Number(perCall.c.waste) / Number(perCall.c.total), 4)}`,
        },
        {
          // What one nonce lane allows: at most LANE_DEPTH txs unmined, each freed when its block is seen.
          name: 'e2e_lane_bound_activities_per_s',
          value: round(laneBound, 2),
          unit: 'activities/s',
          reference: `measured ${round(r.rate, 2)}/s = ${round(r.rate / laneBound, 3)} of it`,
          notes: `tx_policy.max_in_flight ${LANE_DEPTH} ÷ block time ${BLOCK_S} s ÷ the wallet's txs per activity in the span (${r.txInSpan} ÷ ${N} = ${round(r.txInSpan / N, 3)}: batches carry many calls each)`,
        },
        {
          name: 'e2e_chain_bound_activities_per_s',
          value: round(r.bound, 1),
          unit: 'activities/s',
          notes: `block gas limit ${r.gasLimit} ÷ block time ${BLOCK_S} s ÷ gas_per_completed_activity ${Math.round(r.gasPer)}`,
        },
        {
          name: 'e2e_three_workers_activities_per_s',
          value: round(r3.rate, 2),
          unit: 'activities/s',
          reference: `min(3 × e2e_activities_per_s ${round(3 * r.rate, 1)}, chain bound ${round(r3.bound, 1)}) = ${round(Math.min(3 * r.rate, r3.bound), 1)} (ratio ${round(r3.rate / Math.min(3 * r.rate, r3.bound), 3)})`,
          target: 'ratio ≥ 0.8',
          notes: `${runNotes('three wcp, three wallets, one queue, batch path', r3, N)}; gas/activity ${Math.round(r3.gasPer)}; wasted (lost claim races included) ${round(Number(r3.c.waste) / Number(r3.c.total), 4)}: ${fmtKinds(r3.c.wasted)}`,
        },
        {
          name: 'gas_per_completed_activity',
          value: Math.round(r.gasPer),
          unit: 'gas',
          reference: `per-call fallback ${Math.round(perCall.gasPer)} in this run`,
          target: '≤ 150,000',
          notes: `batch path: every transaction of the wallet mined from the start of the run until its lane was quiet (receipts' gasUsed, ${r.txCount} txs, ${r.c.total} gas, the one delegation included) ÷ ${N} completed; by kind (each call's own gas from the call tracer; the batches' envelopes and decoding as "batch overhead"): ${fmtKinds(r.c.byKind)}`,
        },
        {
          name: 'gas_wasted_share',
          value: round(Number(r.c.waste) / Number(r.c.total), 4),
          unit: 'share of gas',
          reference: `${r.c.waste} of ${r.c.total} gas`,
          target: '≤ 0.01',
          notes: `batch path: failed calls (reverted txs and calls the executor reported failed inside a batch), claim calls with no ActivityClaimed of theirs, heartbeat calls with no ActivityHeartbeat of theirs, noop fills, each at its own gas: ${fmtKinds(r.c.wasted)}. Ids skipped inside a claim call that won others are not counted (~3k gas each)`,
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
      if (r) await stopRun(r);
      await world.stop();
    }
  },
};
