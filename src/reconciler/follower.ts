/**
 * Event ingestion that follows new blocks for ActivityEnqueued of our queue (topic filter: topic2 = queueKey
 * = keccak256(queue)) and turns them into claim jobs (source 'event', with block number and hash).
 *
 * Reorg awareness: the follower remembers the hash of the last block of every ingested step and of every block
 * an event came from (bounded to `reorgDepth` entries). Each step first checks that the last ingested block still
 * has the remembered hash; if not, it walks back through the remembered blocks to the newest one that still
 * matches: the fork block is the one after it. It then reports `reorg` and re-ingests from the fork block.
 * Within a step, the hash of the step's last block is read before and after eth_getLogs, and the first block's
 * parent hash is checked against memory: if anything moved, the step is discarded and retried (the next
 * check finds the reorg), so no logs of an abandoned branch are emitted without a later `reorg`.
 *
 * Coverage: `next` only advances past a range whose logs were all emitted; an error leaves it where it was
 * (the caller retries the same range after a backoff). Duplicates are possible and harmless (idempotent writes).
 */
import { ActivityStatus } from '../chain/abi.ts';
import { type BlockHeader, getHeader, readActivities } from '../chain/reads.ts';
import { queueKeyTopic, TOPICS } from '../chain/topics.ts';
import type { RpcTransport } from '../chain/transport.ts';
import type { ClaimJob } from '../store/records.ts';
import type { LogFetcher, RawLog } from './logs.ts';

export interface FollowerOptions {
  rpc: RpcTransport;
  logs: LogFetcher;
  taskQueue: string;
  multicall3: string;
  queueName: string;
  /** First block to ingest. */
  startBlock: number;
  /** Known hash of `startBlock - 1` (from a checkpoint), to detect a reorg across a restart. */
  startParentHash?: string;
  /** Max blocks per step. */
  maxBlocksPerStep: number;
  /** Remembered hashes (at least 2). */
  reorgDepth: number;
  /** Emit only activities still Pending and not expired at the step's last block. */
  filterClaimable: boolean;
  /** Clock seam (claim jobs' `created_at_ms`). */
  now?: () => number;
}

export interface FollowStep {
  /** Claim jobs from this step (possibly empty). */
  jobs: ClaimJob[];
  /** Set when a reorg was detected in this step (then jobs is empty and `next` moved back). */
  reorg?: { forkBlock: number; detail: string };
  /** The last block now fully ingested, when the step advanced. */
  checkpoint?: { block_number: number; block_hash: string };
  /** True when the follower is at the head after this step. */
  caughtUp: boolean;
  head: number;
}

export interface Follower {
  step(): Promise<FollowStep>;
  status(): { next: number; remembered: number; reorgs: number };
}

export function createFollower(opts: FollowerOptions): Follower {
  const maxStep = Math.max(1, opts.maxBlocksPerStep);
  const depth = Math.max(2, opts.reorgDepth);
  const now = opts.now ?? Date.now;
  const filterClaimable = opts.filterClaimable;
  const queueTopic = queueKeyTopic(opts.queueName);
  let next = opts.startBlock;
  /** block number → hash of ingested blocks we can verify later. */
  const hashes = new Map<number, string>();
  if (opts.startParentHash && opts.startBlock > 0) hashes.set(opts.startBlock - 1, opts.startParentHash.toLowerCase());
  let reorgs = 0;

  function remember(n: number, hash: string) {
    hashes.set(n, hash);
    if (hashes.size > depth) {
      const sorted = [...hashes.keys()].sort((a, b) => a - b);
      for (const k of sorted.slice(0, hashes.size - depth)) hashes.delete(k);
    }
  }

  /** Newest remembered block below `next`, if any. */
  function lastRemembered(): number | undefined {
    let best: number | undefined;
    for (const k of hashes.keys()) if (k < next && (best === undefined || k > best)) best = k;
    return best;
  }

  /** Walks remembered blocks newest-first; returns the fork block (first block that changed). */
  async function findFork(): Promise<{ forkBlock: number; detail: string }> {
    const nums = [...hashes.keys()].filter((k) => k < next).sort((a, b) => b - a);
    let changedLowest = next;
    for (const n of nums) {
      const h = await getHeader(opts.rpc, n).catch(() => undefined);
      if (h && h.hash === hashes.get(n)) {
        return { forkBlock: n + 1, detail: `block ${n} still ${short(h.hash)}; blocks from ${n + 1} were replaced` };
      }
      changedLowest = n;
    }
    return {
      forkBlock: changedLowest,
      detail: `every remembered block (${nums.length}) changed; re-ingesting from the oldest, ${changedLowest}`,
    };
  }

  async function handleReorg(head: number): Promise<FollowStep> {
    const fork = await findFork();
    reorgs++;
    for (const k of [...hashes.keys()]) if (k >= fork.forkBlock) hashes.delete(k);
    next = fork.forkBlock;
    return { jobs: [], reorg: fork, caughtUp: false, head };
  }

  async function step(): Promise<FollowStep> {
    const head = await getHeader(opts.rpc, 'latest');
    // 1. Is what we ingested still canonical?
    const last = lastRemembered();
    if (last !== undefined) {
      const h = last === head.number ? head : last > head.number ? undefined : await getHeader(opts.rpc, last);
      if (!h || h.hash !== hashes.get(last)) return await handleReorg(head.number);
    }
    if (next > head.number) return { jobs: [], caughtUp: true, head: head.number };

    // 2. One range, verified before and after the log query.
    const from = next;
    const to = Math.min(head.number, from + maxStep - 1);
    const toBefore: BlockHeader = to === head.number ? head : await getHeader(opts.rpc, to);
    const fromHeader = from === to ? toBefore : await getHeader(opts.rpc, from);
    const parentKnown = hashes.get(from - 1);
    if (parentKnown !== undefined && fromHeader.parentHash !== parentKnown) return await handleReorg(head.number);
    const logs = await opts.logs.getLogs(
      { address: opts.taskQueue, topics: [TOPICS.enqueued, null, queueTopic] },
      from,
      to,
    );
    const toAfter = await getHeader(opts.rpc, to);
    if (toAfter.hash !== toBefore.hash) {
      // The chain moved under the query: emit nothing from it; the next step sees the reorg (or a clean range).
      return { jobs: [], caughtUp: false, head: head.number };
    }
    if (logs.some((l) => l.blockNumber === to && l.blockHash !== toBefore.hash)) {
      return { jobs: [], caughtUp: false, head: head.number };
    }

    const jobs = await toJobs(logs, to);
    for (const l of logs) remember(l.blockNumber, l.blockHash);
    remember(to, toBefore.hash);
    next = to + 1;
    return {
      jobs,
      checkpoint: { block_number: to, block_hash: toBefore.hash },
      caughtUp: to === head.number,
      head: head.number,
    };
  }

  async function toJobs(logs: RawLog[], at: number): Promise<ClaimJob[]> {
    if (logs.length === 0) return [];
    const seen = new Map<string, RawLog>();
    for (const l of logs) seen.set(BigInt(l.topics[1] as string).toString(), l);
    let ids = [...seen.keys()];
    if (filterClaimable) {
      const facts = await readActivities(opts.rpc, opts, ids, at);
      ids = facts.filter((f) => f.status === ActivityStatus.Pending && !f.isExpired).map((f) => f.activityId);
    }
    const created = now();
    return ids.map((id) => {
      const l = seen.get(id) as RawLog;
      return {
        activity_id: id,
        queue_name: opts.queueName,
        created_at_ms: created,
        source: 'event' as const,
        block_number: l.blockNumber,
        block_hash: l.blockHash,
      };
    });
  }

  return { step, status: () => ({ next, remembered: hashes.size, reorgs }) };
}

const short = (h: string) => `${h.slice(0, 10)}…`;
