/**
 * The 3 h window of a 250 ms-block chain for the reconciler benchmarks (`npm run bench`, group reconciler):
 * `seedWindowChain` builds it on a fresh anvil, `timeWindowScan` times full-window scans of it with the
 * daemon's own scanner (`src/reconciler/scanner.ts`). Benchmarks only: it imports the dev deploy helpers.
 *
 * How the chain is built:
 * - anvil runs with `LONG_CHAIN_ANVIL_ARGS` (cancun, pruned state history; see common.ts): with anvil's defaults
 *   mining slows down with chain length (~10 s per 1,000 empty blocks by block 6,000 in our runs). Even so
 *   anvil 1.7 re-hashes the whole state on every block, so a block costs a few ms once the contracts hold the
 *   window's activities: seeding takes 1–2 minutes on 2 cores, almost all of it anvil mining empty blocks.
 * - Setup (deploy, register, enqueue) is automined with a fixed timestamp interval of 0: every setup block
 *   carries the genesis timestamp, `SETUP_LEAD_S` before the window.
 * - The window: `evm_mine({ timestamp, blocks: 4 })` per second of chain time, so 4 blocks share each one-second
 *   timestamp, exactly as on a chain with 250 ms blocks (timestamps are whole seconds). The window search
 *   (`findWindowStart`: first block with timestamp ≥ head − window) copes with equal timestamps: its predicate
 *   stays monotone. The worker's transactions of a second are sent to the pool first and land in that second's
 *   first block.
 * - Events of this worker, spread through the window like a worker with `max_inflight` 16 and 10-minute
 *   activities: a `claimActivities` of 8 every 5 min, a `heartbeatBatch` of every live activity every 15 s, and
 *   a `completeActivity` of each activity 10 min (+ a stagger) after its claim. Every transaction is checked
 *   to have succeeded.
 */
import { Wallet } from 'ethers';
import { taskQueueIface } from '../../src/chain/abi.ts';
import { createLogFetcher } from '../../src/reconciler/logs.ts';
import { rpcTransportOptions } from '../../src/chain/options.ts';
import { createRpcTransport } from '../../src/chain/transport.ts';
import { logFetcherOptions, REORG_DEPTH, reconcilerOptions } from '../../src/reconciler/options.ts';
import { createScanner } from '../../src/reconciler/scanner.ts';
import { type Anvil, startAnvil } from '../lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../lib/deploy.ts';
import { rpcBatch } from '../lib/rpc.ts';
import { benchConfig, LONG_CHAIN_ANVIL_ARGS } from './common.ts';

export const BLOCK_MS = 250;
export const WINDOW_S = 3 * 3600;
export const BLOCKS_PER_S = 1000 / BLOCK_MS;
export const WINDOW_BLOCKS = WINDOW_S * BLOCKS_PER_S; // 43,200
const SETUP_LEAD_S = 60;

/** The worker's schedule inside the window (seconds of chain time). */
export const SCHEDULE = {
  claimBatch: 8,
  claimEveryS: 300,
  lifeS: 600,
  heartbeatEveryS: 15,
  /** Completions of one claim batch are spread over this many seconds. */
  completeStaggerS: 120,
  /** Heartbeat timeout of the window's activities (on chain), seconds. */
  heartbeatTimeoutS: 60,
} as const;

export interface WindowChain {
  anvil: Anvil;
  stack: Stack;
  workerKey: string;
  wallet: string;
  /** Timestamp of the window's first block. */
  t0: number;
  /** First and last block of the seeded window. */
  firstBlock: number;
  headBlock: number;
  /** The queue of every activity. */
  queue: string;
  counts: { activities: number; claimTxs: number; heartbeatTxs: number; completeTxs: number; heartbeatEvents: number };
  seedMs: number;
  stop(): Promise<void>;
}

export interface SeedOptions {
  log: (line: string) => void;
}

interface Req {
  data: string;
  gasLimit: bigint;
  kind: 'claim' | 'heartbeat' | 'complete';
  events: number;
}

export async function seedWindowChain(o: SeedOptions): Promise<WindowChain> {
  const t0 = Math.floor(Date.now() / 1000) - WINDOW_S;
  const anvil = await startAnvil({
    args: [...LONG_CHAIN_ANVIL_ARGS, '--timestamp', String(t0 - SETUP_LEAD_S), '--gas-limit', '60000000'],
  });
  let stack: Stack | undefined;
  const stop = async () => {
    stack?.destroy();
    await anvil.stop();
  };
  try {
    const started = performance.now();
    await anvil.rpc('anvil_setBlockTimestampInterval', [0]);
    stack = await deployStack({
      rpcUrl: anvil.url,
      deployerKey: anvil.accounts[0]!.privateKey,
      heartbeatTimeoutS: SCHEDULE.heartbeatTimeoutS,
      lifetimeS: 6 * 3600,
    });
    const worker = anvil.accounts[1]!;
    await registerWorker(stack, worker.address, 1_000_000);
    const windowActivities =
      Math.floor((WINDOW_S - SCHEDULE.lifeS - SCHEDULE.completeStaggerS - 60) / SCHEDULE.claimEveryS) *
      SCHEDULE.claimBatch;
    const queue = 'bench';
    const ids = await enqueueActivities(stack, {
      queue,
      count: windowActivities,
      activityType: 'bench.window',
      heartbeatTimeoutS: SCHEDULE.heartbeatTimeoutS,
      timeoutMs: 300_000,
    });
    await anvil.rpc('evm_setAutomine', [false]);
    const setupBlocks = await anvil.blockNumber();
    o.log(
      `setup: ${setupBlocks} blocks (deploy, register, ${ids.length} enqueued) in ${Math.round(performance.now() - started)} ms`,
    );

    // ---- the worker's schedule, by second of the window
    const perSecond = new Map<number, Req[]>();
    const at = (s: number, r: Req) => {
      const l = perSecond.get(s) ?? [];
      l.push(r);
      perSecond.set(s, l);
    };
    const life = new Map<string, { claimS: number; doneS: number }>();
    for (let b = 0; b * SCHEDULE.claimBatch < ids.length; b++) {
      const batch = ids.slice(b * SCHEDULE.claimBatch, (b + 1) * SCHEDULE.claimBatch);
      const claimS = 30 + b * SCHEDULE.claimEveryS;
      at(claimS, {
        kind: 'claim',
        data: taskQueueIface.encodeFunctionData('claimActivities', [batch]),
        gasLimit: 2_000_000n,
        events: batch.length,
      });
      batch.forEach((id, k) => {
        const doneS = claimS + SCHEDULE.lifeS + Math.floor((k * SCHEDULE.completeStaggerS) / SCHEDULE.claimBatch);
        life.set(id.toString(), { claimS, doneS });
        at(doneS, {
          kind: 'complete',
          data: taskQueueIface.encodeFunctionData('completeActivity', [id, `json:{"result":"blob:bench/${id}"}`]),
          gasLimit: 400_000n,
          events: 1,
        });
      });
    }
    for (let s = 7; s < WINDOW_S; s += SCHEDULE.heartbeatEveryS) {
      const live = ids.filter((id) => {
        const l = life.get(id.toString());
        return l !== undefined && l.claimS < s && s < l.doneS;
      });
      if (live.length === 0) continue;
      at(s, {
        kind: 'heartbeat',
        data: taskQueueIface.encodeFunctionData('heartbeatBatch', [live]),
        gasLimit: BigInt(200_000 + 30_000 * live.length),
        events: live.length,
      });
    }

    // ---- mine the window
    const wallet = new Wallet(worker.privateKey);
    let nonce = Number(BigInt(await anvil.rpc<string>('eth_getTransactionCount', [worker.address, 'pending'])));
    const counts = { activities: ids.length, claimTxs: 0, heartbeatTxs: 0, completeTxs: 0, heartbeatEvents: 0 };
    const hashes: string[] = [];
    const firstBlock = setupBlocks + 1;
    let lastLog = performance.now();
    for (let s = 0; s < WINDOW_S; s++) {
      const reqs = perSecond.get(s);
      if (reqs) {
        const raws = await Promise.all(
          reqs.map((r) =>
            wallet.signTransaction({
              type: 2,
              chainId: anvil.chainId,
              nonce: nonce++,
              to: stack!.addresses.taskQueue,
              data: r.data,
              gasLimit: r.gasLimit,
              maxFeePerGas: 50_000_000_000n,
              maxPriorityFeePerGas: 1_000_000_000n,
            }),
          ),
        );
        hashes.push(
          ...(await rpcBatch<string>(
            anvil.url,
            raws.map((raw) => ['eth_sendRawTransaction', [raw]]),
          )),
        );
        for (const r of reqs) {
          if (r.kind === 'claim') counts.claimTxs++;
          else if (r.kind === 'complete') counts.completeTxs++;
          else {
            counts.heartbeatTxs++;
            counts.heartbeatEvents += r.events;
          }
        }
      }
      await anvil.rpc('evm_mine', [{ timestamp: t0 + s, blocks: BLOCKS_PER_S }]);
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        o.log(`seeding: ${(s + 1) * BLOCKS_PER_S} of ${WINDOW_BLOCKS} blocks, ${hashes.length} txs`);
      }
    }
    const headBlock = await anvil.blockNumber();
    if (headBlock - firstBlock + 1 !== WINDOW_BLOCKS)
      throw new Error(`seeded ${headBlock - firstBlock + 1} blocks, wanted ${WINDOW_BLOCKS}`);
    const receipts = await rpcBatch<{ status: string; blockNumber: string } | null>(
      anvil.url,
      hashes.map((h) => ['eth_getTransactionReceipt', [h]]),
    );
    const bad = receipts.filter((r) => r?.status !== '0x1').length;
    if (bad > 0) throw new Error(`${bad} of ${hashes.length} seeded transactions failed or were not mined`);
    // From here on, blocks carry the wall clock (plus the offset the exact timestamps left behind).
    await anvil.rpc('anvil_removeBlockTimestampInterval', []);
    const seedMs = performance.now() - started;
    o.log(
      `seeded ${WINDOW_BLOCKS} blocks (${firstBlock}…${headBlock}) with ${hashes.length} worker txs in ${Math.round(seedMs)} ms`,
    );
    return {
      anvil,
      stack,
      workerKey: worker.privateKey,
      wallet: worker.address,
      t0,
      firstBlock,
      headBlock,
      queue,
      counts,
      seedMs,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface WindowScanResult {
  runsS: number[];
  fromBlock: number;
  toBlock: number;
  facts: number;
  getLogsRequests: number;
  logs: number;
}

/**
 * Times `runs` full-window scans (reason `startup`, as after a start or a wipe) with fresh scanner, transport
 * and log fetcher each time (no cache carries over): window search, topic-filtered eth_getLogs over the window,
 * getWorkerActivities, batched getActivity / getWorkflow at the pinned head.
 */
export async function timeWindowScan(
  w: WindowChain,
  runs: number,
  chunks: { initial: number; max: number },
): Promise<WindowScanResult> {
  const config = benchConfig({ rpcUrl: w.anvil.url, privateKey: w.workerKey });
  const fetcherOptions = logFetcherOptions(reconcilerOptions(config, { localIds: [] }));
  const runsS: number[] = [];
  let res: WindowScanResult | undefined;
  for (let r = 0; r < runs; r++) {
    const rpc = createRpcTransport(rpcTransportOptions(config));
    let logs = 0;
    const fetcher = createLogFetcher({
      rpc,
      ...fetcherOptions,
      initialChunkBlocks: chunks.initial,
      maxChunkBlocks: chunks.max,
    });
    const counting = {
      ...fetcher,
      getLogs: async (...a: Parameters<typeof fetcher.getLogs>) => {
        const out = await fetcher.getLogs(...a);
        logs += out.length;
        return out;
      },
    };
    const scanner = createScanner({
      rpc,
      logs: counting,
      taskQueue: w.stack.addresses.taskQueue,
      workflowEngine: w.stack.addresses.workflowEngine,
      multicall3: w.stack.addresses.multicall3,
      wallet: w.wallet,
      windowS: WINDOW_S,
      includeHeartbeats: true,
      reorgDepth: REORG_DEPTH,
    });
    const t = performance.now();
    const scan = await scanner.scan({ reason: 'startup' });
    runsS.push((performance.now() - t) / 1000);
    res = {
      runsS,
      fromBlock: scan.window.fromBlock,
      toBlock: scan.window.toBlock,
      facts: scan.facts.length,
      getLogsRequests: fetcher.stats().requests,
      logs,
    };
  }
  if (!res) throw new Error('no scan run');
  return res;
}
