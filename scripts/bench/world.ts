/**
 * The parts most benchmark groups share: a chain (anvil with the reference contracts, one registered worker
 * wallet, the dev subnet-api), the bench executor as its own process, the env `dist/wcp` runs with, a block
 * watcher (when each block was first served by the node, on this process's clock), and chain-truth readers
 * (logs, block timestamps, the wallet's transactions and receipts). Nothing here asks the daemon anything.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbiCoder } from 'ethers';
import { batchExecutorIface, tryExecuteFailures } from '../../src/chain/batch-executor.ts';
import { type DevSubnetApi, startDevSubnetApi } from '../lib/subnet-api/index.ts';
import { type Anvil, type DevAccount, startAnvil } from '../lib/anvil.ts';
import { deployStack, registerWorker, type Stack } from '../lib/deploy.ts';
import { rpcBatch } from '../lib/rpc.ts';
import { wcpEnv } from '../lib/wcp-env.ts';
import { captureOutput, jsonLines, ROOT, type WcpProcess } from '../lib/wcp-process.ts';
import { BENCH_SETTINGS, nowMs, quietLogger, sleep } from './common.ts';

/** A chain for one group: anvil, contracts, the worker wallet (registered, capacity 10,000), the subnet-api. */
export interface World {
  anvil: Anvil;
  stack: Stack;
  /** The worker wallet (the first of `wallets`). */
  wallet: DevAccount;
  /** Every registered worker wallet. */
  wallets: DevAccount[];
  api: DevSubnetApi;
  topics: { enqueued: string; claimed: string; heartbeat: string; completed: string; failed: string };
  stop(): Promise<void>;
}

/**
 * Starts anvil (`blockTime` s blocks, or automine) with the stack and the batch executor deployed and the worker
 * registered. anvil's default hardfork accepts EIP-7702: wcp delegates and batches its calls; `hardfork: 'cancun'`
 * is a chain without type-4 transactions (wcp's per-call path). `workers`: more registered worker wallets.
 */
export async function startWorld(
  o: { blockTime?: number; heartbeatTimeoutS?: number; hardfork?: 'cancun'; workers?: number } = {},
): Promise<World> {
  const anvil = await startAnvil({
    ...(o.blockTime !== undefined ? { blockTime: o.blockTime } : {}),
    ...(o.hardfork ? { args: ['--hardfork', o.hardfork] } : {}),
    accounts: Math.max(10, 2 + (o.workers ?? 1)),
  });
  const stack = await deployStack({
    rpcUrl: anvil.url,
    deployerKey: anvil.accounts[0]!.privateKey,
    ...(o.heartbeatTimeoutS !== undefined ? { heartbeatTimeoutS: o.heartbeatTimeoutS } : {}),
    batchExecutor: true,
  });
  const wallet = anvil.accounts[1]!;
  const wallets = anvil.accounts.slice(1, 1 + (o.workers ?? 1));
  for (const w of wallets) await registerWorker(stack, w.address, 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'wcp-bench-api-'));
  const api = await startDevSubnetApi({ dataDir: join(dir, 'blobs'), logger: quietLogger('subnet-api') });
  const tq = stack.contracts.taskQueue.interface;
  const topic = (e: string) => tq.getEvent(e)?.topicHash as string;
  return {
    anvil,
    stack,
    wallet,
    wallets,
    api,
    topics: {
      enqueued: topic('ActivityEnqueued'),
      claimed: topic('ActivityClaimed'),
      heartbeat: topic('ActivityHeartbeat'),
      completed: topic('ActivityCompleted'),
      failed: topic('ActivityFailed'),
    },
    async stop() {
      stack.destroy();
      await api.stop();
      await anvil.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The bench executor process (scripts/bench/exec-proc.ts). */
export interface ExecProc {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts scripts/bench/exec-proc.ts with `concurrency` slots and a default task length of `ms`. */
export async function startExecProc(concurrency: number, ms = 0): Promise<ExecProc> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'scripts', 'bench', 'exec-proc.ts'), '--concurrency', String(concurrency), '--ms', String(ms)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WCP_LOG_FORMAT: 'json' } },
  );
  const out = captureOutput(proc);
  const deadline = Date.now() + 20_000;
  let port = 0;
  while (!port) {
    const ready = jsonLines(out.output()).find((l) => l.bench === 'ready');
    if (ready) port = Number(ready.port);
    else if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`bench executor did not start:\n${out.output().slice(-2000)}`);
    else await sleep(20);
  }
  return { port, proc, stop: () => stopChild(proc, 'SIGTERM', 5000) };
}

/** Sends `signal`, waits up to `graceMs` for the exit, then SIGKILLs. */
export async function stopChild(proc: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  await Promise.race([exited, sleep(graceMs)]);
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGKILL');
    await exited;
  }
}

let kept = 0;
/** Stops a wcp process (SIGTERM, then SIGKILL after `graceMs`); with WCP_BENCH_LOG_DIR set its output is kept there. */
export async function stopWcp(w: WcpProcess, graceMs = 15_000): Promise<void> {
  await stopChild(w.proc, 'SIGTERM', graceMs);
  keepOutput(w);
}

/** Writes `w`'s output to $WCP_BENCH_LOG_DIR/wcp-N.log when that is set ($WCP_BENCH_LOG_LEVEL sets its log level). */
export function keepOutput(w: WcpProcess): void {
  const dir = process.env.WCP_BENCH_LOG_DIR;
  if (dir) writeFileSync(join(dir, `wcp-${++kept}.log`), w.output());
}

/**
 * The env of `dist/wcp` in a group: the local profile, the world's chain and contracts through `rpcUrl` (a proxy
 * or the node; new heads by WebSocket from the node itself), the bench executor at `execPort`, the dev subnet-api,
 * then `layers`.
 */
export function benchEnv(
  w: World,
  rpcUrl: string,
  execPort: number,
  ...layers: Array<Record<string, string>>
): Record<string, string> {
  return benchEnvFor(w, w.wallet, rpcUrl, execPort, ...layers);
}

/** `benchEnv` for another of the world's worker wallets. */
export function benchEnvFor(
  w: World,
  wallet: DevAccount,
  rpcUrl: string,
  execPort: number,
  ...layers: Array<Record<string, string>>
): Record<string, string> {
  return wcpEnv({ rpcUrl, privateKey: wallet.privateKey }, BENCH_SETTINGS, {
    WCP__ETHEREUM__MULTICALL3_ADDRESS: w.stack.addresses.multicall3,
    WCP__ETHEREUM__SUBNET_CONTROL_PLANE_ADDRESS: w.stack.addresses.subnetControlPlane,
    WCP__ETHEREUM__TASK_QUEUE_ADDRESS: w.stack.addresses.taskQueue,
    WCP__ETHEREUM__WORKFLOW_ENGINE_ADDRESS: w.stack.addresses.workflowEngine,
    // New heads pushed straight from the node (reads and transactions still go through `rpcUrl`).
    WCP__ETHEREUM__WS_URL: w.anvil.url.replace(/^http/, 'ws'),
    WCP__EXECUTOR__ENDPOINT: `127.0.0.1:${execPort}`,
    WCP__SUBNET_API__GRPC_ENDPOINT: w.api.grpcEndpoint,
    ...Object.assign({}, ...layers),
    // Kept logs (WCP_BENCH_LOG_DIR) at another level, e.g. debug to see each heartbeat sent.
    ...(process.env.WCP_BENCH_LOG_LEVEL ? { WCP__LOG__LEVEL: process.env.WCP_BENCH_LOG_LEVEL } : {}),
    // Runtime flags for dist/wcp, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (written when a process exits cleanly).
    ...(process.env.WCP_BENCH_BUN_OPTIONS ? { BUN_OPTIONS: process.env.WCP_BENCH_BUN_OPTIONS } : {}),
  });
}

/** When each block number was first served by the node (eth_blockNumber polled every `everyMs`). */
export interface BlockWatch {
  seen: Map<number, number>;
  head(): number;
  stop(): Promise<void>;
}

/** Watches the node's head; blocks skipped between two polls get the later poll's time. */
export function watchBlocks(url: string, everyMs = 5): BlockWatch {
  const seen = new Map<number, number>();
  let head = -1;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const [h] = await rpcBatch<string>(url, [['eth_blockNumber', []]]);
        const t = nowMs();
        const n = Number(BigInt(h as string));
        for (let b = head + 1; b <= n; b++) if (!seen.has(b)) seen.set(b, t);
        head = Math.max(head, n);
      } catch {
        // The node is gone at the end of a group.
      }
      await sleep(everyMs);
    }
  })();
  return {
    seen,
    head: () => head,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** One log as the node returns it, with the block number parsed. */
export interface ChainLog {
  block: number;
  topics: string[];
  data: string;
  tx: string;
}

/** `eth_getLogs` of `address` with `topics`, in chunks of 2,000 blocks. */
export async function getLogs(
  url: string,
  address: string,
  topics: Array<string | null>,
  from: number,
  to: number,
): Promise<ChainLog[]> {
  const out: ChainLog[] = [];
  for (let a = from; a <= to; a += 2000) {
    const b = Math.min(to, a + 1999);
    const [logs] = await rpcBatch<
      Array<{ blockNumber: string; topics: string[]; data: string; transactionHash: string }>
    >(url, [['eth_getLogs', [{ address, topics, fromBlock: `0x${a.toString(16)}`, toBlock: `0x${b.toString(16)}` }]]]);
    for (const l of logs ?? [])
      out.push({ block: Number(BigInt(l.blockNumber)), topics: l.topics, data: l.data, tx: l.transactionHash });
  }
  return out;
}

/** The activity id of a TaskQueue log (topic 1). */
export const logId = (l: ChainLog): string => BigInt(l.topics[1] as string).toString();

/** Block timestamps (s) of `blocks`. */
export async function blockTimes(url: string, blocks: Iterable<number>): Promise<Map<number, number>> {
  const list = [...new Set(blocks)];
  const res = await rpcBatch<{ timestamp: string }>(
    url,
    list.map((b) => ['eth_getBlockByNumber', [`0x${b.toString(16)}`, false]]),
  );
  return new Map(list.map((b, i) => [b, Number(BigInt((res[i] as { timestamp: string }).timestamp))]));
}

/** A mined transaction of the wallet with its receipt. */
export interface WalletTx {
  hash: string;
  block: number;
  from: string;
  to: string;
  /** 4 for an EIP-7702 (set code) transaction. */
  type: number;
  data: string;
  gasUsed: bigint;
  status: number;
  logs: Array<{ address: string; topics: string[]; data: string }>;
}

/** Every transaction `from` sent that was mined in blocks `from`..`to` (chain truth: blocks and receipts). */
export async function walletTxs(url: string, wallet: string, fromBlock: number, toBlock: number): Promise<WalletTx[]> {
  const nums = Array.from({ length: toBlock - fromBlock + 1 }, (_, i) => fromBlock + i);
  const blocks = await rpcBatch<{
    transactions: Array<{ hash: string; from: string; to: string; input: string; type?: string }>;
  }>(
    url,
    nums.map((b) => ['eth_getBlockByNumber', [`0x${b.toString(16)}`, true]]),
  );
  const mine = blocks.flatMap((b, i) =>
    b.transactions
      .filter((t) => t.from.toLowerCase() === wallet.toLowerCase())
      .map((t) => ({ ...t, block: nums[i] as number })),
  );
  type Receipt = { gasUsed: string; status: string; logs: Array<{ address: string; topics: string[]; data: string }> };
  const receipts = await rpcBatch<Receipt>(
    url,
    mine.map((t) => ['eth_getTransactionReceipt', [t.hash]]),
  );
  return mine.map((t, i) => {
    const r = receipts[i] as Receipt;
    return {
      hash: t.hash,
      block: t.block,
      from: t.from.toLowerCase(),
      to: (t.to ?? '').toLowerCase(),
      type: Number(BigInt(t.type ?? '0x2')),
      data: t.input,
      gasUsed: BigInt(r.gasUsed),
      status: Number(BigInt(r.status)),
      logs: r.logs,
    };
  });
}

/** One call of a wallet transaction: the tx itself, or one call of a batch (EIP-7702), with the gas it used. */
export interface TxCall {
  tx: WalletTx;
  /** Index in its batch (0 for a plain tx). */
  index: number;
  to: string;
  data: string;
  ok: boolean;
  /** Gas of this call: a plain tx's gasUsed; a batch call's own (callTracer), the batch's overhead apart. */
  gasUsed: bigint;
}

/**
 * The calls of `txs`: a plain transaction is one call; a batch (a call from the wallet to itself running the batch
 * executor's `execute`) is one per inner call, failed when the executor reported it, with each call's own gas from
 * the node's call tracer (`debug_traceTransaction`). Also the gas of each batch beyond its calls' (the envelope,
 * calldata and the executor's decoding): `overhead`.
 */
export async function txCalls(url: string, txs: WalletTx[]): Promise<{ calls: TxCall[]; overhead: bigint }> {
  const batches = txs.filter((t) => t.to === t.from && t.data !== '0x' && t.status === 1);
  type Frame = { gasUsed: string; calls?: Frame[] };
  const traces = await rpcBatch<Frame>(
    url,
    batches.map((t) => ['debug_traceTransaction', [t.hash, { tracer: 'callTracer' }]]),
  );
  const traceOf = new Map(batches.map((t, i) => [t.hash, traces[i] as Frame]));
  const calls: TxCall[] = [];
  let overhead = 0n;
  for (const tx of txs) {
    const trace = traceOf.get(tx.hash);
    if (!trace) {
      calls.push({ tx, index: 0, to: tx.to, data: tx.data, ok: tx.status === 1, gasUsed: tx.gasUsed });
      continue;
    }
    const p = batchExecutorIface.parseTransaction({ data: tx.data });
    const inner = AbiCoder.defaultAbiCoder().decode(
      ['tuple(address,uint256,bytes)[]'],
      p?.args[1] as string,
    )[0] as Array<[string, bigint, string]>;
    const failed = tryExecuteFailures(tx.logs, tx.from);
    let sum = 0n;
    inner.forEach(([to, , data], i) => {
      const g = BigInt(trace.calls?.[i]?.gasUsed ?? '0x0');
      sum += g;
      calls.push({ tx, index: i, to: to.toLowerCase(), data, ok: !failed.has(i), gasUsed: g });
    });
    overhead += tx.gasUsed - sum;
  }
  return { calls, overhead };
}
