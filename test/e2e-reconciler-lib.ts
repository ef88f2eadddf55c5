/**
 * Shared helpers of the reconciler end-to-end tests (`e2e-reconciler-*.test.ts`): the env that runs the compiled
 * binary in claim mode with the no-op test executor and short intervals, readers of chain truth (TaskQueue events
 * with block timestamps, the wallet's transactions, activity views), of the store (`wcp db scan` of every key
 * family) and of wcp's JSON log lines, and a proxy rule that blinds the Poller so the only way wcp can learn of
 * new work is ActivityEnqueued ingestion (the path these tests are about).
 */
import { existsSync } from 'node:fs';
import type { Stack } from '../scripts/lib/deploy.ts';
import type { RpcProxy } from './support/rpc-proxy.ts';
import { type ActivityView, activityViews, rpcBatch, tqIface } from './support/chain.ts';
import { type LogLine, logLines, type Sandbox, until, wcpScan, type WcpProcess } from './support/wcp.ts';

export { type LogLine, logLines } from './support/wcp.ts';

export { activityViews, type ActivityView, blockNumber, type QueueEvent, queueEvents, rpcBatch, sleep, tqIface } from './support/chain.ts';

/** Env for `wcp run` (claim mode, no-op test executor, short intervals). `extra` wins. */
export function reconEnv(rpcUrl: string, key: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ENVIRONMENT: 'local',
    WCP__ETHEREUM__RPC_URL: rpcUrl,
    WCP__ETHEREUM__WALLET_PRIVATE_KEY: key,
    WCP__ETHEREUM__WALLET_ADDRESS: '',
    WCP__ETHEREUM__REQUEST_TIMEOUT: '3s',
    WCP__METRICS__ENABLED: 'false',
    WCP__SCHEDULER__POLL_INTERVAL: '500ms',
    WCP__SCHEDULER__MAX_INFLIGHT: '64',
    WCP__SCHEDULER__CLAIM_BATCH: '16',
    WCP__SCHEDULER__HEARTBEAT_INTERVAL: '3s',
    WCP__TX_POLICY__MAX_IN_FLIGHT: '32',
    WCP__TX_POLICY__BUMP_AFTER: '4s',
    WCP__TX_POLICY__RECEIPT_POLL: '100ms',
    WCP__RECONCILER__FOLLOW_INTERVAL: '250ms',
    WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'true',
    WCP__EXECUTOR__NOOP_DELAY: '1s',
    WCP__SHUTDOWN__DRAIN_TIMEOUT: '1s',
    ...extra,
  };
}

// ------------------------------------------------------------------------------------------------ raw rpc




export interface WalletCall {
  blockNumber: number;
  fn: string;
  ids: string[];
}

/** TaskQueue calls sent by `from` in blocks [fromBlock, latest] (decoded: function name and activity ids). */
export async function walletCalls(url: string, from: string, taskQueue: string, fromBlock: number): Promise<WalletCall[]> {
  const head = Number(BigInt((await rpcBatch<string>(url, [['eth_blockNumber', []]]))[0] as string));
  const nums = Array.from({ length: Math.max(0, head - fromBlock + 1) }, (_, i) => fromBlock + i);
  const blocks = await rpcBatch<{ number: string; transactions: Array<{ from: string; to: string | null; input: string }> }>(
    url,
    nums.map((n) => ['eth_getBlockByNumber', [`0x${n.toString(16)}`, true]] as [string, unknown[]]),
  );
  const out: WalletCall[] = [];
  for (const b of blocks) {
    for (const t of b?.transactions ?? []) {
      if (t.from.toLowerCase() !== from.toLowerCase() || t.to?.toLowerCase() !== taskQueue.toLowerCase()) continue;
      const p = tqIface.parseTransaction({ data: t.input });
      if (!p) continue;
      const a = p.args[0] as unknown;
      const ids = typeof a === 'bigint' ? [a.toString()] : Array.isArray(a) || (a && typeof a === 'object' && 'length' in a) ? [...(a as bigint[])].map(String) : [];
      out.push({ blockNumber: Number(BigInt(b.number)), fn: p.name, ids });
    }
  }
  return out;
}

export const CLAIM_FNS = new Set(['claimActivity', 'claimActivities']);




// ------------------------------------------------------------------------------------------------ store

export type Rec = { key: string; value: Record<string, unknown> };
/** `wcpScan`, or nothing before wcp has created its store. */
export const scan = (sb: Sandbox, prefix: string): Rec[] => (existsSync(sb.dbPath) ? wcpScan(sb, prefix) : []);
export const STORE_PREFIXES = ['claim_job:', 'inflight:', 'tx:', 'lane:', 'done:', 'nonce:', 'last_scan_block', 'quarantine:'];
/** Every record of the store, by key family. */
export function dumpStore(sb: Sandbox): Record<string, Rec[]> {
  return Object.fromEntries(STORE_PREFIXES.map((p) => [p, scan(sb, p)]));
}
export const doneById = (sb: Sandbox) => new Map(scan(sb, 'done:').map((r) => [String(r.value.activity_id), r.value]));
export const inflightById = (sb: Sandbox) => new Map(scan(sb, 'inflight:').map((r) => [String(r.value.activity_id), r.value]));

// ------------------------------------------------------------------------------------------------ logs

export const linesWith = (w: WcpProcess, msg: string | RegExp) =>
  logLines(w).filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));

// ------------------------------------------------------------------------------------------------ proxy

const POLL_SELECTOR = tqIface.getFunction('pollActivity')!.selector.slice(2).toLowerCase();
/**
 * Makes every eth_call that carries a `pollActivity` call (the Poller's Multicall3 batch) fail, so the Poller
 * finds nothing and wcp can learn of new activities only from ActivityEnqueued events.
 */
export function blindPoller(proxy: RpcProxy) {
  return proxy.addRule({
    name: 'blind poller',
    match: (c) => c.method === 'eth_call' && JSON.stringify(c.params ?? []).toLowerCase().includes(POLL_SELECTOR),
    action: { type: 'error', code: -32000, message: 'test proxy: pollActivity disabled' },
  });
}

/** Waits until every id is Completed on chain by `worker` and has a `done: completed` record. */
export async function waitAllCompleted(sb: Sandbox, stack: Stack, ids: string[], worker: string, timeoutMs: number, w?: WcpProcess) {
  await until(
    async () => {
      if (w && w.proc.exitCode !== null) throw new Error(`wcp exited (${w.proc.exitCode}):\n${w.output().slice(-3000)}`);
      const views = await activityViews(stack, ids);
      const done = doneById(sb);
      return ids.filter((id, i) => {
        const v = views[i] as ActivityView;
        return !(Number(v.status) === 3 && v.worker.toLowerCase() === worker.toLowerCase() && done.get(id)?.outcome === 'completed');
      });
    },
    (missing) => missing.length === 0,
    timeoutMs,
    'every activity completed by us on chain and done: completed',
  );
}
