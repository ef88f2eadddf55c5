/**
 * `benchReconcileWindow`: the time a full-window reconciler scan takes (`reconcile_window_s`), for
 * `npm run bench`. Seeds a fresh stack on the given node (a dev anvil) with a realistic density of this
 * worker's events — claims, heartbeat batches, completions spread over `blocks` blocks — then times one
 * startup scan (window search, topic-filtered getLogs, getWorkerActivities, batched getActivity/getWorkflow).
 * Imports the dev deploy helpers, so it is for benchmarks only (not part of the daemon).
 */
import { deployStack, enqueueActivities, laneSigner, registerWorker, sendMany } from '../../scripts/lib/deploy.ts';
import { taskQueueIface } from './chain.ts';
import { createLogFetcher } from './logs.ts';
import { createRpcTransport } from './rpc.ts';
import { createScanner } from './scanner.ts';

export interface BenchReconcileOptions {
  /** JSON-RPC URL of a dev node whose accounts 0 and 1 are the anvil dev keys. */
  url: string;
  deployerKey: string;
  workerKey: string;
  /**
   * Blocks the window spans; default 2 000. Seeding cost grows faster than linearly with this on anvil
   * (`anvil_mine` of 1 000 blocks takes 1.5 s on a fresh node, 3.7 s on one 1 000 blocks longer).
   */
  blocks?: number;
  /** Activities claimed by the worker; default 300 (20 % completed). */
  activities?: number;
  /** A heartbeat batch of every live activity every this many blocks; default 250. */
  heartbeatEveryBlocks?: number;
  initialChunkBlocks?: number;
  /** Repetitions of the scan (the median is reported); default 3. */
  runs?: number;
  /** Progress lines (phase timings). */
  log?: (line: string) => void;
}

export interface BenchReconcileResult {
  reconcile_window_s: number;
  runs_s: number[];
  blocks: number;
  facts: number;
  getlogs_requests: number;
}

export async function benchReconcileWindow(o: BenchReconcileOptions): Promise<BenchReconcileResult> {
  const blocks = o.blocks ?? 2_000;
  const n = o.activities ?? 300;
  const every = o.heartbeatEveryBlocks ?? 250;
  let t = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    o.log?.(`${name}: ${Math.round(now - t)} ms`);
    t = now;
  };
  const stack = await deployStack({ rpcUrl: o.url, deployerKey: o.deployerKey, heartbeatTimeoutS: 86_400 });
  try {
    const worker = laneSigner(o.workerKey, stack.provider);
    const wallet = await worker.getAddress();
    await registerWorker(stack, wallet, 1_000_000);
    const ids = await enqueueActivities(stack, { queue: 'bench', count: n });
    phase('deploy + enqueue');
    const sender = { provider: stack.provider, signer: worker, chainId: stack.chainId };
    const tq = stack.addresses.taskQueue;
    const mine = (count: number) => stack.provider.send('anvil_mine', [`0x${count.toString(16)}`]);

    // Claims spread over the first fifth of the window, heartbeats over all of it, completions at the end.
    const claimChunks: bigint[][] = [];
    for (let i = 0; i < ids.length; i += 25) claimChunks.push(ids.slice(i, i + 25));
    const claimGap = Math.max(1, Math.floor(blocks / 5 / Math.max(1, claimChunks.length)));
    for (const chunk of claimChunks) {
      await sendMany(sender, [{ to: tq, data: taskQueueIface.encodeFunctionData('claimActivities', [chunk]) }]);
      await mine(claimGap);
    }
    phase('claims');
    const done = ids.slice(0, Math.floor(n / 5));
    const live = ids.slice(done.length);
    let mined = claimGap * claimChunks.length;
    while (mined < blocks - 10) {
      for (let i = 0; i < live.length; i += 100) {
        await sendMany(sender, [{ to: tq, data: taskQueueIface.encodeFunctionData('heartbeatBatch', [live.slice(i, i + 100)]) }]);
      }
      const step = Math.min(every, blocks - 10 - mined);
      await mine(step);
      mined += step;
    }
    await sendMany(
      sender,
      done.map((id) => ({ to: tq, data: taskQueueIface.encodeFunctionData('completeActivity', [id, `r-${id}`]) })),
    );
    phase('heartbeats + completions');

    const runs: number[] = [];
    let facts = 0;
    let requests = 0;
    for (let r = 0; r < (o.runs ?? 3); r++) {
      const rpc = createRpcTransport({ urls: [o.url] });
      const logs = createLogFetcher({ rpc, initialChunkBlocks: o.initialChunkBlocks ?? 2_000 });
      const scanner = createScanner({
        rpc,
        logs,
        taskQueue: tq,
        workflowEngine: stack.addresses.workflowEngine,
        multicall3: stack.addresses.multicall3,
        wallet,
        windowS: 10 ** 9,
      });
      const t0 = performance.now();
      const res = await scanner.scan({ reason: 'startup' });
      runs.push((performance.now() - t0) / 1000);
      facts = res.facts.length;
      requests = logs.stats().requests;
    }
    const sorted = [...runs].sort((a, b) => a - b);
    const head = Number(BigInt(await stack.provider.send('eth_blockNumber', [])));
    return { reconcile_window_s: sorted[Math.floor(sorted.length / 2)] ?? 0, runs_s: runs, blocks: head + 1, facts, getlogs_requests: requests };
  } finally {
    stack.destroy();
  }
}
