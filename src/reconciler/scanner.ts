/**
 * The reconciler scan: which activities concern this wallet, and what the chain says about each of them.
 *
 * Ids come from (a) TaskQueue events in the window with `worker = wallet` (ActivityClaimed, ActivityHeartbeat,
 * ActivityCompleted, ActivityFailed: one topic-filtered eth_getLogs, topic0 OR-list + topic2 = wallet),
 * (b) `getWorkerActivities(wallet)` (claims older than the window that are still held), (c) ids the supervisor
 * asks about (its local inflight / claim_job records, which may concern activities the chain gave to others).
 * All are read with batched `getActivity` through Multicall3 at one pinned block (the head read at the start),
 * so every fact of a scan describes the same chain state. For Completed activities of a workflow, the engine is
 * read too (`getWorkflow` at the same block) and WorkflowResumed/WorkflowCompleted events of those instances in
 * the window are scanned, to tell whether the workflow already moved past the step.
 *
 * Window policy: a startup or manual scan always covers the whole window (a wiped or restored store must be
 * rebuilt, and a checkpoint proves nothing about what the store still holds). Periodic scans fetch logs only
 * from the previous scan's head minus `reorgDepth` (ids found earlier stay known while their block is inside
 * the window), and re-read every known id that is not settled: expiry is not an event, so facts must be re-read
 * each time. Settled: an id seen Failed, or Completed with its workflow moved past the step (or none), at a scan
 * whose head is now `reorgDepth` blocks deep. Nothing changes such an activity again (Completed and Failed are
 * final, a workflow never moves back), and the head it was seen at can no longer be replaced, so re-reading it
 * tells nothing: periodic scans skip it, so their cost follows the activities still open, not every activity of
 * the window (which grows with throughput). Startup, manual and reorg scans (full) read them all.
 */
import { ActivityStatus, workflowEngineIface } from '../chain/abi.ts';
import type { ActivityFact, WorkflowEvidence } from '../chain/facts.ts';
import { type BlockHeader, getHeader, readFactsAt, readWorkerActivities } from '../chain/reads.ts';
import { addressTopic, TOPICS, uintTopic } from '../chain/topics.ts';
import type { RpcTransport } from '../chain/transport.ts';
import type { LogFetcher } from './logs.ts';
import type { ScanReason } from './messages.ts';
import { findWindowStart, type HeaderReader, headerReader } from './window.ts';

export interface ScannerOptions {
  rpc: RpcTransport;
  logs: LogFetcher;
  taskQueue: string;
  workflowEngine: string;
  multicall3: string;
  wallet: string;
  windowS: number;
  /** Also use ActivityHeartbeat events to find our activities. */
  includeHeartbeats: boolean;
  /** Overlap of incremental log fetches, blocks. */
  reorgDepth: number;
}

export interface ScanResult {
  facts: ActivityFact[];
  window: { fromBlock: number; toBlock: number };
  head: BlockHeader;
  /** Blocks whose logs were fetched this time. */
  logRange: { fromBlock: number; toBlock: number } | null;
  /** Known ids not read: settled (see the file comment). */
  skipped: number;
}

export interface ScanInput {
  reason: ScanReason;
  /** Extra ids to read (local records). */
  ids?: string[];
  /** Pin the scan to this head instead of reading `latest` (tests, the startup hand-off). */
  head?: BlockHeader;
}

export interface Scanner {
  scan(input: ScanInput): Promise<ScanResult>;
}

/** Nothing will change this activity again: Failed, or Completed with its workflow past the step or none. */
function isSettled(f: ActivityFact): boolean {
  if (f.status === ActivityStatus.Failed) return true;
  return f.status === ActivityStatus.Completed && (f.workflowInstance === '0' || f.workflowResumedPastStep === true);
}

export function createScanner(opts: ScannerOptions): Scanner {
  const read: HeaderReader = headerReader(opts.rpc);
  const reorgDepth = opts.reorgDepth;
  const walletTopic = addressTopic(opts.wallet);
  const topic0 = [
    TOPICS.claimed,
    TOPICS.completed,
    TOPICS.failed,
    ...(opts.includeHeartbeats ? [TOPICS.heartbeat] : []),
  ];
  /** id → the latest block an event of ours mentioned it in. */
  const known = new Map<string, number>();
  /** id → the head of the first scan that saw it settled (see the file comment). */
  const settled = new Map<string, number>();
  let lastLogTo: number | undefined;
  let lastWindowStart = 0;

  async function windowStart(head: BlockHeader): Promise<number> {
    const lowerBound = lastWindowStart <= head.number ? lastWindowStart : 0;
    const start = await findWindowStart(read, { head, windowS: opts.windowS, lowerBound });
    lastWindowStart = start;
    return start;
  }

  async function scan(input: ScanInput): Promise<ScanResult> {
    const head = input.head ?? (await getHeader(opts.rpc, 'latest'));
    const fromBlock = await windowStart(head);
    const toBlock = head.number;

    // 1. Which log range to fetch.
    const full = input.reason !== 'periodic' || lastLogTo === undefined || lastLogTo > toBlock;
    if (full) {
      known.clear();
      settled.clear();
    }
    const logFrom = full ? fromBlock : Math.max(fromBlock, (lastLogTo as number) - reorgDepth + 1);
    for (const [id, b] of known) {
      if (b >= fromBlock) continue;
      known.delete(id);
      settled.delete(id);
    }
    let logRange: ScanResult['logRange'] = null;
    if (logFrom <= toBlock) {
      const logs = await opts.logs.getLogs(
        { address: opts.taskQueue, topics: [topic0, null, walletTopic] },
        logFrom,
        toBlock,
      );
      for (const l of logs) {
        const id = BigInt(l.topics[1] as string).toString();
        known.set(id, Math.max(known.get(id) ?? 0, l.blockNumber));
      }
      logRange = { fromBlock: logFrom, toBlock };
    }
    lastLogTo = toBlock;

    // 2. Enumerate: events (but the settled) ∪ getWorkerActivities ∪ caller's ids.
    const ids = new Set<string>();
    let skipped = 0;
    for (const id of known.keys()) {
      const at = settled.get(id);
      if (at !== undefined && at + reorgDepth <= toBlock) skipped++;
      else ids.add(id);
    }
    for (const id of await readWorkerActivities(opts.rpc, opts.taskQueue, opts.wallet, toBlock)) ids.add(id);
    for (const id of input.ids ?? []) if (/^[0-9]+$/.test(id) && id !== '0') ids.add(id.replace(/^0+(?=\d)/, ''));
    const sorted = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));

    // 3. Read all at the pinned block, with the workflow state of completed steps.
    const facts = await readFactsAt(opts.rpc, opts, sorted, head, (instances) =>
      workflowEvidence(instances, fromBlock, toBlock),
    );
    for (const f of facts) {
      if (!isSettled(f)) settled.delete(f.activityId);
      else if (!settled.has(f.activityId)) settled.set(f.activityId, toBlock);
    }
    return { facts, window: { fromBlock, toBlock }, head, logRange, skipped };
  }

  /** instance → { maxResumedStep, completed } from WorkflowResumed/WorkflowCompleted events in the window. */
  async function workflowEvidence(instances: string[], from: number, to: number) {
    const out = new Map<string, WorkflowEvidence>();
    for (let i = 0; i < instances.length; i += 64) {
      const part = instances.slice(i, i + 64);
      const logs = await opts.logs.getLogs(
        { address: opts.workflowEngine, topics: [[TOPICS.wfResumed, TOPICS.wfCompleted], part.map(uintTopic)] },
        from,
        to,
      );
      for (const l of logs) {
        const inst = BigInt(l.topics[1] as string).toString();
        const e = out.get(inst) ?? { maxStep: -1, completed: false };
        if (l.topics[0] === TOPICS.wfCompleted) e.completed = true;
        else {
          const parsed = workflowEngineIface.parseLog({ topics: l.topics, data: l.data });
          if (parsed) e.maxStep = Math.max(e.maxStep, Number(parsed.args.step as bigint));
        }
        out.set(inst, e);
      }
    }
    return out;
  }

  return { scan };
}
