/**
 * Calldata for the lifecycle's transactions and decoding of the TaskQueue events in their receipts.
 * Uses only the contract interfaces of `src/chain/abi.ts`.
 */
import type { Interface } from 'ethers';
import { taskQueueIface as tq, workflowEngineIface as wf } from '../chain/abi.ts';
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
  return { kind: 'claim', to: taskQueue, data: tq.encodeFunctionData('claimActivity', [id]), activityIds: [id] };
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
    data: tq.encodeFunctionData('claimActivities', [ids]),
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
    data: tq.encodeFunctionData('heartbeatBatch', [ids]),
    activityIds: ids,
    minGasLimit: batchGasFloor('heartbeat', ids.length),
  };
}

export function completeCall(taskQueue: string, id: string, resultRef: string): Call {
  return {
    kind: 'complete',
    to: taskQueue,
    data: tq.encodeFunctionData('completeActivity', [id, resultRef]),
    activityIds: [id],
  };
}

export function failCall(taskQueue: string, id: string, reason: string): Call {
  return {
    kind: 'fail',
    to: taskQueue,
    data: tq.encodeFunctionData('failActivity', [id, reason.slice(0, MAX_REF_CHARS)]),
    activityIds: [id],
  };
}

export function resumeCall(workflowEngine: string, id: string, instance: string): Call {
  return {
    kind: 'resume',
    to: workflowEngine,
    data: wf.encodeFunctionData('resumeWorkflow', [instance]),
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

/** The TaskQueue events of one receipt that concern `wallet`. Logs of other contracts are ignored. */
export function activityEvents(
  logs: ReadonlyArray<{ address: string; topics: readonly string[]; data: string }>,
  taskQueue: string,
  wallet: string,
): ActivityEvents {
  const out: ActivityEvents = { claimed: new Map(), heartbeat: new Set(), completed: new Set(), failed: new Set() };
  const me = wallet.toLowerCase();
  for (const log of logs) {
    if (log.address.toLowerCase() !== taskQueue.toLowerCase()) continue;
    let parsed: ReturnType<Interface['parseLog']>;
    try {
      parsed = tq.parseLog({ topics: [...log.topics], data: log.data });
    } catch {
      continue;
    }
    if (!parsed) continue;
    const id = (parsed.args.activityId as bigint).toString();
    const worker = String(parsed.args.worker ?? '').toLowerCase();
    switch (parsed.name) {
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
  return out;
}

/** The result reference wcp writes on chain for a successful Completion: `json:{"key":"ref",…}`. */
export function resultRefOf(outputRefs: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(outputRefs).sort(([a], [b]) => a.localeCompare(b)));
  return `json:${JSON.stringify(sorted)}`;
}
