/**
 * Chain truth about activities and workflows, normalized: what `TaskQueue.getActivity` and
 * `WorkflowEngine.getWorkflow` report, read at one block. Produced by the reads of `reads.ts` (the reconciler's
 * scans and the lifecycle's re-checks alike) and consumed by the lifecycle's repair rules.
 */
import { type ActivityStatusCode, WorkflowStatus } from './abi.ts';

/** One activity as the chain reports it (`TaskQueue.getActivity`), normalized. */
export interface ActivityTuple {
  /** Decimal. */
  activityId: string;
  /** False when the chain does not know the id (status 0; e.g. its enqueue was reorged away). */
  exists: boolean;
  queue: string;
  /** Decimal; '0' for a standalone activity. */
  workflowInstance: string;
  stepIndex: number;
  activityType: string;
  inputRef: string;
  /** 0 None, 1 Pending, 2 Claimed, 3 Completed, 4 Failed. */
  status: ActivityStatusCode;
  /** Lower-cased; the zero address when never claimed. */
  worker: string;
  /** Chain timestamps, seconds (0 when unset). */
  enqueuedAtS: number;
  claimedAtS: number;
  lastHeartbeatAtS: number;
  heartbeatTimeoutS: number;
  expiresAtS: number;
  finishedAtS: number;
  isCompleted: boolean;
  /** As the contract derives it at `nowS` (Pending/Claimed past expiresAt, Claimed past heartbeat timeout). */
  isExpired: boolean;
  /** Result on completion, reason on failure. */
  resultRef: string;
}

/**
 * An activity tuple plus what the WorkflowEngine says about its workflow. All reads of one scan are pinned to one
 * block (`blockNumber`, timestamp `nowS`).
 */
export interface ActivityFact extends ActivityTuple {
  /** Timestamp of the block the fact was read at, seconds. */
  nowS: number;
  /** The block the fact was read at. */
  blockNumber: number;
  /**
   * Only for a Completed activity of a workflow (`workflowInstance != '0'`):
   * true  — the workflow moved past this step (resumed, or completed);
   * false — the workflow still waits on this very activity (someone must call `resumeWorkflow`);
   * undefined — not applicable, or the workflow moved on without this activity (e.g. it is not the step's
   *             current activity), or the engine could not be read: nobody can resume it from this activity.
   */
  workflowResumedPastStep?: boolean;
  /** The workflow as `getWorkflow` reported it, when read. */
  workflow?: WorkflowFact;
}

/** `WorkflowEngine.getWorkflow`, normalized. */
export interface WorkflowFact {
  instanceId: string;
  /** 0 None, 1 Running, 2 Completed. */
  status: number;
  currentStep: number;
  stepCount: number;
  currentActivityId: string;
}

/** Event evidence of a workflow instance: the highest step it resumed to, and whether it completed. */
export interface WorkflowEvidence {
  maxStep: number;
  completed: boolean;
}

/**
 * Whether a Completed activity's workflow moved past its step. The engine's state is authoritative
 * (`WorkflowResumed(instance, step, …)` names the NEW current step); events only add evidence when the engine
 * could not be read. See `ActivityFact.workflowResumedPastStep`.
 */
export function resumedPastStep(
  f: ActivityFact,
  wf: WorkflowFact | undefined,
  ev: WorkflowEvidence | undefined,
): boolean | undefined {
  if (wf && wf.status !== WorkflowStatus.None) {
    if (wf.status === WorkflowStatus.Completed || wf.currentStep > f.stepIndex) return true;
    if (wf.currentActivityId === f.activityId) return false;
    return undefined; // the step's current activity is another one: not ours to resume
  }
  if (ev && (ev.completed || ev.maxStep > f.stepIndex)) return true;
  return undefined;
}
