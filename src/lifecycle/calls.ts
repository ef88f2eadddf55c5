/**
 * Calldata for the lifecycle's transactions and decoding of the TaskQueue events in their receipts.
 * Uses only the contract interfaces of `src/chain/abi.ts`.
 */
import type { Interface } from 'ethers';
import { taskQueueIface as tq, workflowEngineIface as wf } from '../chain/abi.ts';
import { encodeCall, eventOf } from '../chain/abi-fast.ts';
import type { TxKind } from '../store/records.ts';

export interface Call {
  kind: TxKind;
  to: string;
  data: string;
  activityIds: string[];
  /** Gas floor of a batch call (see `TxRequest.minGasLimit`): its worst case, every id live when mined. */
  minGasLimit?: bigint;
  /** A liveness tx: see `TxRequest.priority`. */
  priority?: boolean;
  /** See `TxRequest.stillWanted`. */
  stillWanted?: () => boolean;
}

/**
 * Worst-case gas of the batch forms, from the receipts measured in test/contracts.test.ts (claimActivities
 * 44k/id, heartbeatBatch 12.5k/id, first id and tx overhead ~35k more), rounded up with room.
 */
export const batchGasFloor = (kind: 'claim_batch' | 'heartbeat', n: number): bigint =>
  BigInt(kind === 'claim_batch' ? 60_000 + 60_000 * n : 45_000 + 20_000 * n);

/** Bound on what wcp writes on chain as a result reference or failure reason. */
export const MAX_REF_CHARS = 2048;

/** A single-id claim for simulation: its revert names why the id is not claimable (NotClaimable, ActivityExpired…). */
export function claimSimulationCall(taskQueue: string, id: string): Call {
  return { kind: 'claim', to: taskQueue, data: encodeCall(tq, 'claimActivity', [id]), activityIds: [id] };
}

/**
 * The claim that is sent: always the batch form, even for one id. `claimActivities` skips ids someone else won
 * in the meantime instead of reverting, so a race lost between simulation and mining costs the skipped id's
 * loop iteration, not a reverted transaction (the receipt's events say which ids are ours).
 */
export function claimCall(taskQueue: string, ids: string[]): Call {
  return {
    kind: 'claim_batch',
    to: taskQueue,
    data: encodeCall(tq, 'claimActivities', [ids]),
    activityIds: ids,
    minGasLimit: batchGasFloor('claim_batch', ids.length),
  };
}

/**
 * Heartbeats, always in the batch form, even for one id: `heartbeatBatch` skips an id that was completed, failed or
 * expired by the time the tx is mined (e.g. its complete was mined first) instead of reverting the whole tx.
 */
export function heartbeatCall(taskQueue: string, ids: string[]): Call {
  return {
    kind: 'heartbeat',
    to: taskQueue,
    data: encodeCall(tq, 'heartbeatBatch', [ids]),
    activityIds: ids,
    minGasLimit: batchGasFloor('heartbeat', ids.length),
  };
}

export function completeCall(taskQueue: string, id: string, resultRef: string): Call {
  return {
    kind: 'complete',
    to: taskQueue,
    data: encodeCall(tq, 'completeActivity', [id, resultRef]),
    activityIds: [id],
  };
}

export function failCall(taskQueue: string, id: string, reason: string): Call {
  return {
    kind: 'fail',
    to: taskQueue,
    data: encodeCall(tq, 'failActivity', [id, reason.slice(0, MAX_REF_CHARS)]),
    activityIds: [id],
  };
}

export function resumeCall(workflowEngine: string, id: string, instance: string): Call {
  return {
    kind: 'resume',
    to: workflowEngine,
    data: encodeCall(wf, 'resumeWorkflow', [instance]),
    activityIds: [id],
  };
}

export interface ActivityEvents {
  /** activity id → worker (lower-cased) */
  claimed: Map<string, string>;
  heartbeat: Set<string>;
  completed: Set<string>;
  failed: Set<string>;
}

type EventName = 'ActivityClaimed' | 'ActivityHeartbeat' | 'ActivityCompleted' | 'ActivityFailed';
const EVENT_NAMES: readonly EventName[] = [
  'ActivityClaimed',
  'ActivityHeartbeat',
  'ActivityCompleted',
  'ActivityFailed',
];
/** topic0 → the events `activityEvents` reads; computed once. */
let eventByTopic: Map<string, EventName> | undefined;
const WORD_RE = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS_TOPIC_RE = /^0x0{24}[0-9a-fA-F]{40}$/;

function add(out: ActivityEvents, name: EventName, id: string, worker: string, me: string): void {
  switch (name) {
    case 'ActivityClaimed':
      out.claimed.set(id, worker);
      break;
    case 'ActivityHeartbeat':
      if (worker === me) out.heartbeat.add(id);
      break;
    case 'ActivityCompleted':
      if (worker === me) out.completed.add(id);
      break;
    case 'ActivityFailed':
      if (worker === me) out.failed.add(id);
      break;
  }
}

/**
 * One log of the four events, read straight off its topics (activityId and worker are indexed) when it has the
 * canonical shape; undefined otherwise, and ethers' `parseLog` decides. The non-indexed string of Completed and
 * Failed is not used, but its encoding must be one ethers would read (else parseLog throws and the log is skipped).
 */
function fastEvent(
  name: EventName,
  log: { topics: readonly string[]; data: string },
): { id: string; worker: string } | undefined {
  const [, idTopic, workerTopic] = log.topics;
  if (log.topics.length !== 3 || !idTopic || !workerTopic) return undefined;
  if (!WORD_RE.test(idTopic) || !ADDRESS_TOPIC_RE.test(workerTopic)) return undefined;
  if (name === 'ActivityClaimed' || name === 'ActivityHeartbeat' ? log.data !== '0x' : !isStringData(log.data))
    return undefined;
  return { id: BigInt(idTopic).toString(), worker: `0x${workerTopic.slice(26).toLowerCase()}` };
}

/** `data` is the canonical encoding of one string (offset 32, length, padded bytes). */
function isStringData(data: string): boolean {
  if (!/^0x(?:[0-9a-fA-F]{64})*$/.test(data) || data.length < 130) return false;
  if (Number.parseInt(data.slice(2, 66), 16) !== 32 || !data.startsWith('0'.repeat(48), 66)) return false;
  const len = Number.parseInt(data.slice(114, 130), 16);
  return data.length - 130 >= Math.ceil(len / 32) * 64;
}

/** The TaskQueue events of one receipt that concern `wallet`. Logs of other contracts and other events are ignored. */
export function activityEvents(
  logs: ReadonlyArray<{ address: string; topics: readonly string[]; data: string }>,
  taskQueue: string,
  wallet: string,
): ActivityEvents {
  const out: ActivityEvents = { claimed: new Map(), heartbeat: new Set(), completed: new Set(), failed: new Set() };
  const me = wallet.toLowerCase();
  const queue = taskQueue.toLowerCase();
  eventByTopic ??= new Map(EVENT_NAMES.map((n) => [eventOf(tq, n).topic, n]));
  for (const log of logs) {
    if (log.address.toLowerCase() !== queue) continue;
    const name = eventByTopic.get(String(log.topics[0]).toLowerCase());
    if (!name) continue; // another event (or none): nothing this function reads
    const fast = fastEvent(name, log);
    if (fast) {
      add(out, name, fast.id, fast.worker, me);
      continue;
    }
    let parsed: ReturnType<Interface['parseLog']>;
    try {
      parsed = tq.parseLog({ topics: [...log.topics], data: log.data });
    } catch {
      continue;
    }
    if (!parsed) continue;
    const id = (parsed.args.activityId as bigint).toString();
    const worker = String(parsed.args.worker ?? '').toLowerCase();
    add(out, parsed.name as EventName, id, worker, me);
  }
  return out;
}

/** The result reference wcp writes on chain for a successful Completion: `json:{"key":"ref",…}`. */
export function resultRefOf(outputRefs: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(outputRefs).sort(([a], [b]) => a.localeCompare(b)));
  return `json:${JSON.stringify(sorted)}`;
}
