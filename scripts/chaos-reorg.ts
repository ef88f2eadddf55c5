/**
 * Chaos run: reorgs under crashes, against the compiled binary (`dist/wcp`, built-in no-op test executor) on a
 * fresh anvil with 1 s blocks and `ethereum.confirmations = 1`. Too slow for the test suite; run by hand:
 *
 *   bun scripts/chaos-reorg.ts [--workflows 4] [--steps 4] [--events 8] [--seed N] [--keep]
 *
 * It starts `workflows` × `steps` workflows, then runs `events` chaos events a few seconds apart, each one of:
 * `anvil_reorg` of depth 1–4 (replacement blocks empty), a kill -9 and restart, and once a kill -9 with the store
 * wiped before the restart; a wipe (and half the kills) is followed within seconds by a depth-4 reorg that takes
 * back what the killed life sent last. Then it waits for the work to settle and checks, on the final chain: every activity
 * enqueued was completed exactly once, by this worker; none failed; every workflow finished; the wallet has no
 * nonce gap; nothing is left pending or held in the store. Prints one JSON summary line; exits 1 on a failed check.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startAnvil } from './lib/anvil.ts';
import { deployStack, registerWorker, startWorkflows } from './lib/deploy.ts';
import { wcpEnv } from './lib/wcp-env.ts';
import { logLines, type Sandbox, sandbox, startWcp, type WcpProcess, wcpScan } from './lib/wcp-process.ts';
import { taskQueueIface } from '../src/chain/abi.ts';

const { values: args } = parseArgs({
  options: {
    workflows: { type: 'string', default: '4' },
    steps: { type: 'string', default: '4' },
    events: { type: 'string', default: '8' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    keep: { type: 'boolean', default: false },
  },
});
const WORKFLOWS = Number(args.workflows);
const STEPS = Number(args.steps);
const EVENTS = Number(args.events);
const SEED = Number(args.seed);

/** mulberry32: a small seeded PRNG so a run can be replayed with `--seed`. */
let s = SEED >>> 0;
function rand(): number {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SETTINGS: Record<string, string> = {
  WCP__ETHEREUM__CONFIRMATIONS: '1',
  WCP__SCHEDULER__POLL_INTERVAL: '300ms',
  WCP__SCHEDULER__MAX_INFLIGHT: '16',
  WCP__SCHEDULER__CLAIM_BATCH: '8',
  WCP__SCHEDULER__HEARTBEAT_INTERVAL: '2s',
  WCP__TX_POLICY__MAX_IN_FLIGHT: '32',
  WCP__TX_POLICY__BUMP_AFTER: '4s',
  WCP__TX_POLICY__BUMP_AFTER_BLOCKS: '0',
  WCP__TX_POLICY__RECEIPT_POLL: '200ms',
  WCP__RECONCILER__FOLLOW_INTERVAL: '300ms',
  WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'true',
  // Long enough that the work lasts through the chaos events.
  WCP__EXECUTOR__NOOP_DELAY: '6s',
  WCP__SHUTDOWN__DRAIN_TIMEOUT: '2s',
};

type Log = { topics: string[]; data: string; blockNumber: string };

async function main(): Promise<number> {
  const started = Date.now();
  const anvil = await startAnvil({ blockTime: 1, accounts: 3 });
  let box: Sandbox | undefined;
  let w: WcpProcess | undefined;
  const lives: WcpProcess[] = [];
  const done: string[] = [];
  try {
    const stack = await deployStack({
      rpcUrl: anvil.url,
      deployerKey: anvil.accounts[0]!.privateKey,
      heartbeatTimeoutS: 30,
    });
    const me = anvil.accounts[1]!;
    const queue = 'chaos';
    await registerWorker(stack, me.address, 16);
    const wfs = await startWorkflows(stack, { queue, count: WORKFLOWS, steps: STEPS });
    box = sandbox();
    const env = wcpEnv({ rpcUrl: anvil.url, privateKey: me.privateKey, queue }, SETTINGS);
    const start = () => {
      w = startWcp(box as Sandbox, ['run'], env);
      lives.push(w);
    };
    start();
    await sleep(4_000);

    const wipeAt = between(1, Math.max(1, EVENTS - 2));
    let reorgs = 0;
    let removed = 0;
    let after: string | undefined;
    for (let i = 0; i < EVENTS; i++) {
      // Right after a kill or a wipe, a reorg soon takes back what the killed life sent last (the hard case: the
      // new life has no lane record of those nonces when a wipe came between).
      const soon = after === 'wipe' || (after === 'kill' && rand() < 0.5);
      await sleep(soon && i !== wipeAt ? between(1_500, 3_000) : between(2_000, 6_000));
      const kind = i === wipeAt ? 'wipe' : soon ? 'reorg' : rand() < 0.65 ? 'reorg' : 'kill';
      after = kind;
      if (kind === 'reorg') {
        const depth = soon ? 4 : between(1, 4);
        await anvil.rpc('evm_setIntervalMining', [0]);
        try {
          const head = await anvil.blockNumber();
          const from = head - depth + 1;
          const blocks = await Promise.all(
            Array.from({ length: depth }, (_, k) =>
              anvil.rpc<{ transactions: string[] }>('eth_getBlockByNumber', [`0x${(from + k).toString(16)}`, false]),
            ),
          );
          removed += blocks.reduce((n, b) => n + (b?.transactions.length ?? 0), 0);
          await anvil.rpc('anvil_reorg', [depth, []]);
        } finally {
          await anvil.rpc('evm_setIntervalMining', [1]);
        }
        reorgs++;
        done.push(`reorg:${depth}`);
      } else {
        w?.proc.kill('SIGKILL');
        await w?.exited;
        if (kind === 'wipe') {
          rmSync(box.dbPath, { recursive: true, force: true });
          rmSync(`${box.dbPath}-lock`, { force: true });
        }
        done.push(kind);
        await sleep(between(300, 1_500));
        start();
      }
    }

    // Settle: every workflow finished, nothing held, the lane drained; 150 s at most.
    const wf = stack.contracts.workflowEngine.getFunction('getWorkflow');
    const deadline = Date.now() + 150_000;
    let state = { finished: 0, held: -1, claimJobs: -1, gap: -1 };
    while (Date.now() < deadline) {
      if (w?.proc.exitCode !== null) break;
      const statuses = await Promise.all(
        wfs.map(async (x) => Number(((await wf(x.instanceId)) as { status: bigint }).status)),
      );
      const [latest, pending] = await Promise.all(
        ['latest', 'pending'].map(async (t) =>
          Number(BigInt(await anvil.rpc<string>('eth_getTransactionCount', [me.address, t]))),
        ),
      );
      state = {
        finished: statuses.filter((x) => x === 2).length,
        held: wcpScan(box, 'inflight:').length,
        claimJobs: wcpScan(box, 'claim_job:').length,
        gap: (pending as number) - (latest as number),
      };
      if (state.finished === wfs.length && state.held === 0 && state.claimJobs === 0 && state.gap === 0) break;
      await sleep(2_000);
    }

    // The final chain's verdict, from its events.
    const logs = await anvil.rpc<Log[]>('eth_getLogs', [
      { address: stack.addresses.taskQueue, fromBlock: '0x0', toBlock: 'latest' },
    ]);
    const enqueued = new Set<string>();
    const completed = new Map<string, string[]>();
    const failed: string[] = [];
    for (const l of logs) {
      const p = taskQueueIface.parseLog({ topics: l.topics, data: l.data });
      if (!p) continue;
      const id = String(p.args.activityId);
      if (p.name === 'ActivityEnqueued') enqueued.add(id);
      if (p.name === 'ActivityCompleted') completed.set(id, [...(completed.get(id) ?? []), String(p.args.worker)]);
      if (p.name === 'ActivityFailed') failed.push(id);
    }
    const meLc = me.address.toLowerCase();
    const notOnce = [...enqueued].filter((id) => {
      const c = completed.get(id) ?? [];
      return c.length !== 1 || c[0]?.toLowerCase() !== meLc;
    });
    const lines = lives.flatMap((l) => logLines(l));
    const summary = {
      ok:
        notOnce.length === 0 &&
        failed.length === 0 &&
        state.finished === wfs.length &&
        state.held === 0 &&
        state.claimJobs === 0 &&
        state.gap === 0 &&
        enqueued.size === WORKFLOWS * STEPS,
      seed: SEED,
      workflows: WORKFLOWS,
      steps: STEPS,
      activities: enqueued.size,
      events: done,
      reorgs,
      txs_removed_by_reorgs: removed,
      not_completed_once: notOnce.map((id) => `${id}:${(completed.get(id) ?? []).length}`),
      failed,
      ...state,
      noop_fills: lines.filter((l) => l.msg === 'filling a nonce gap with a noop self-transfer').length,
      adopted_from_pool: lines.filter((l) => String(l.msg).startsWith('a nonce gap holds a transaction of ours'))
        .length,
      requeued: lines.filter((l) => l.msg === 'repaired from chain' && l.action === 'requeue').length,
      errors: lines
        .filter((l) => l.level === 'error')
        .map((l) => l.msg)
        .slice(0, 10),
      wcp_exited: w?.proc.exitCode ?? null,
      duration_s: Math.round((Date.now() - started) / 1000),
      sandbox: args.keep ? box.dir : undefined,
    };
    console.log(JSON.stringify(summary));
    return summary.ok ? 0 : 1;
  } finally {
    w?.proc.kill('SIGTERM');
    await w?.exited;
    await anvil.stop();
    if (!args.keep) box?.cleanup();
  }
}

process.exit(await main());
