/**
 * Whether a configuration can keep activities alive on this chain, checked once at start (the supervisor's
 * startup checks): the arithmetic needs two figures only the chain has, the TaskQueue's default heartbeat timeout
 * and the block time.
 *
 * The rule: a heartbeat is due `interval` after the last one was mined, where interval = min(heartbeat_interval,
 * timeout / 3), and takes up to `inclusion` = one block + one receipt poll + one loop tick to be mined. Their sum,
 * the longest expected gap between two heartbeats on chain, must stay within half the timeout, so that one
 * heartbeat that misses its block (a fee bump, a busy node) still lands in time. Confirmation depth plays no part:
 * heartbeats and dispatch act on inclusion.
 *
 * What is checked where: `tx_policy.receipt_poll` against `scheduler.heartbeat_interval` at config load (no chain
 * needed, `src/config/load.ts`); the rule below at start, once the chain can be read. Activities enqueued with a
 * heartbeat timeout of their own (shorter than the default) cannot be checked before they are seen.
 */
import { getHeader } from '../chain/reads.ts';
import { type RpcTransport, withRetry } from '../chain/transport.ts';
import { taskQueueIface } from '../chain/abi.ts';
import { WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { TICK_MS } from './options.ts';

/** The figures of the rule; the first two from the config, the last two from the chain. */
export interface LivenessFigures {
  heartbeatIntervalMs: number;
  receiptPollMs: number;
  heartbeatTimeoutS: number;
  blockTimeS: number;
}

/** The rule's terms, and the arithmetic as one line for logs and errors. */
export interface LivenessBudget {
  intervalS: number;
  inclusionS: number;
  limitS: number;
  ok: boolean;
  arithmetic: string;
}

const s = (x: number) => `${Number(x.toFixed(2))} s`;

/**
 * Seconds between two heartbeats of an activity: `scheduler.heartbeat_interval`, but at most a third of its
 * heartbeat timeout (a timeout of 0 or none known leaves the interval alone).
 */
export function heartbeatEveryS(heartbeatIntervalMs: number, heartbeatTimeoutS: number | undefined): number {
  const byTimeout = heartbeatTimeoutS ? heartbeatTimeoutS / 3 : Number.POSITIVE_INFINITY;
  return Math.min(heartbeatIntervalMs / 1000, byTimeout);
}

/** The rule (see the file comment) for `f`. */
export function livenessBudget(f: LivenessFigures): LivenessBudget {
  const intervalS = heartbeatEveryS(f.heartbeatIntervalMs, f.heartbeatTimeoutS);
  const inclusionS = f.blockTimeS + f.receiptPollMs / 1000 + TICK_MS / 1000;
  const limitS = f.heartbeatTimeoutS / 2;
  const ok = intervalS + inclusionS <= limitS;
  const arithmetic =
    `heartbeat interval ${s(intervalS)} (min of scheduler.heartbeat_interval ${s(f.heartbeatIntervalMs / 1000)} ` +
    `and timeout/3) + inclusion ${s(inclusionS)} (block time ${s(f.blockTimeS)} + tx_policy.receipt_poll ` +
    `${s(f.receiptPollMs / 1000)} + loop tick ${s(TICK_MS / 1000)}) = ${s(intervalS + inclusionS)} ` +
    `${ok ? '≤' : '>'} half the contract's heartbeat timeout ${s(f.heartbeatTimeoutS)} = ${s(limitS)}`;
  return { intervalS, inclusionS, limitS, ok, arithmetic };
}

/** Headers sampled for the block time (the median gap: bursts of blocks on dev chains do not skew it). */
const BLOCK_SAMPLE = 20;

/** The chain's block time in seconds (median of the last gaps), or null with too few blocks to tell. */
export async function measureBlockTimeS(rpc: RpcTransport): Promise<number | null> {
  const head = await withRetry(() => getHeader(rpc, 'latest'));
  const n = Math.min(BLOCK_SAMPLE, head.number);
  if (n < 2) return null;
  const headers = await Promise.all(
    Array.from({ length: n }, (_, i) => withRetry(() => getHeader(rpc, head.number - n + i))),
  );
  headers.push(head);
  const gaps = headers
    .slice(1)
    .map((h, i) => h.timestamp - (headers[i]?.timestamp ?? h.timestamp))
    .sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)] ?? null;
}

/**
 * The startup check: reads the TaskQueue's default heartbeat timeout and the block time, and refuses
 * (`CONFIG_INVALID`, with the arithmetic) a configuration that cannot keep activities alive.
 */
export async function checkLiveness(
  rpc: RpcTransport,
  o: { taskQueue: string; heartbeatIntervalMs: number; receiptPollMs: number },
  log: Logger,
): Promise<void> {
  const raw = await withRetry(() =>
    rpc.request<string>('eth_call', [
      { to: o.taskQueue, data: taskQueueIface.encodeFunctionData('defaultHeartbeatTimeout', []) },
      'latest',
    ]),
  );
  const heartbeatTimeoutS = Number(taskQueueIface.decodeFunctionResult('defaultHeartbeatTimeout', raw)[0]);
  const blockTimeS = await measureBlockTimeS(rpc);
  if (blockTimeS === null || heartbeatTimeoutS <= 0) {
    log.info('liveness not checked: too few blocks to measure the block time', {
      heartbeat_timeout_s: heartbeatTimeoutS,
    });
    return;
  }
  const b = livenessBudget({ ...o, heartbeatTimeoutS, blockTimeS });
  if (!b.ok) {
    const fix = b.limitS - b.inclusionS;
    throw new WcpError('CONFIG_INVALID', 'this configuration cannot keep activities alive on this chain', {
      details: [
        b.arithmetic,
        fix > 0
          ? `set scheduler.heartbeat_interval to at most ${s(fix)} (or tx_policy.receipt_poll lower)`
          : `blocks come too slowly for a ${s(heartbeatTimeoutS)} heartbeat timeout: no heartbeat interval can work; raise the TaskQueue's heartbeat timeout`,
      ],
    });
  }
  log.info('liveness budget', {
    arithmetic: b.arithmetic,
    heartbeat_timeout_s: heartbeatTimeoutS,
    block_time_s: blockTimeS,
  });
}
