/**
 * The ABIs wcp speaks, in ethers v6 human-readable form. This file is the only place the daemon learns the
 * shape of the network's contracts: swapping in production ABIs touches this file (and the thin callers in
 * `src/chain/`). `test/contracts.test.ts` checks that the project's reference contracts implement every entry.
 *
 * Activity status codes (TaskQueue `Status` enum): 0 None, 1 Pending, 2 Claimed, 3 Completed, 4 Failed.
 * Expiry is derived, not stored: a Pending or Claimed activity is expired once `block.timestamp > expiresAt`,
 * and a Claimed one also once `block.timestamp > lastHeartbeatAt + heartbeatTimeout`.
 */
import { Interface } from 'ethers';

/** The tuple returned by `TaskQueue.getActivity(id)`. */
export const ACTIVITY_TUPLE =
  'tuple(uint256 id, string queue, uint256 workflowInstance, uint32 stepIndex, string activityType, string inputRef, uint8 status, address worker, uint64 enqueuedAt, uint64 claimedAt, uint64 lastHeartbeatAt, uint64 heartbeatTimeout, uint64 expiresAt, uint64 finishedAt, bool isCompleted, bool isExpired, string resultRef)';

export const SUBNET_CONTROL_PLANE_ABI = [
  'function owner() view returns (address)',
  'function taskQueue() view returns (address)',
  'function setTaskQueue(address queue)',
  'function registerWorker(address worker, uint32 capacity)',
  'function setWorkerActive(address worker, bool active)',
  'function setWorkerCapacity(address worker, uint32 capacity)',
  'function isWorkerActive(address worker) view returns (bool)',
  'function getWorker(address worker) view returns (tuple(bool registered, bool active, uint32 capacity, uint64 claimed, uint64 completed, uint64 failed))',
  'function recordClaim(address worker)',
  'function recordCompletion(address worker)',
  'function recordFailure(address worker)',
  'event WorkerRegistered(address indexed worker, uint32 capacity)',
  'event WorkerStatusChanged(address indexed worker, bool active)',
  'error NotOwner()',
  'error NotTaskQueue()',
  'error UnknownWorker(address worker)',
] as const;

export const TASK_QUEUE_ABI = [
  'function owner() view returns (address)',
  'function controlPlane() view returns (address)',
  'function defaultHeartbeatTimeout() view returns (uint64)',
  'function activityLifetime() view returns (uint64)',
  'function setEnqueuer(address account, bool allowed)',
  'function enqueueActivity(string queue, uint256 workflowInstance, uint32 stepIndex, string activityType, string inputRef, uint64 heartbeatTimeout) returns (uint256 activityId)',
  'function pollActivity(string queue, uint256 offset) view returns (bool hasActivity, uint256 activityId, string activityType, string inputRef, uint64 expiresAt)',
  'function claimActivity(uint256 activityId)',
  'function claimActivities(uint256[] activityIds) returns (uint256 claimed)',
  'function heartbeat(uint256 activityId)',
  'function heartbeatBatch(uint256[] activityIds) returns (uint256 accepted)',
  'function completeActivity(uint256 activityId, string resultRef)',
  'function failActivity(uint256 activityId, string reason)',
  `function getActivity(uint256 activityId) view returns (${ACTIVITY_TUPLE})`,
  'function getWorkerActivities(address worker) view returns (uint256[])',
  'function activityCount() view returns (uint256)',
  'event ActivityEnqueued(uint256 indexed activityId, bytes32 indexed queueKey, uint256 indexed workflowInstance, string queue, string activityType, uint32 stepIndex)',
  'event ActivityClaimed(uint256 indexed activityId, address indexed worker)',
  'event ActivityHeartbeat(uint256 indexed activityId, address indexed worker)',
  'event ActivityCompleted(uint256 indexed activityId, address indexed worker, string resultRef)',
  'event ActivityFailed(uint256 indexed activityId, address indexed worker, string reason)',
  'error NotOwner()',
  'error NotEnqueuer()',
  'error NotActiveWorker(address worker)',
  'error UnknownActivity(uint256 activityId)',
  'error NotClaimable(uint256 activityId, uint8 status)',
  'error NotAssignedWorker(uint256 activityId, address worker)',
  'error ActivityExpired(uint256 activityId)',
  'error EmptyQueueName()',
] as const;

export const WORKFLOW_ENGINE_ABI = [
  'function taskQueue() view returns (address)',
  'function startWorkflow(string queue, tuple(string activityType, string inputRef, uint64 heartbeatTimeout)[] steps) returns (uint256 instanceId)',
  'function resumeWorkflow(uint256 instanceId)',
  'function getWorkflow(uint256 instanceId) view returns (tuple(uint256 id, address starter, string queue, uint32 currentStep, uint32 stepCount, uint256 currentActivityId, uint8 status))',
  'function workflowCount() view returns (uint256)',
  'event WorkflowStarted(uint256 indexed instanceId, address indexed starter, uint32 stepCount)',
  'event WorkflowResumed(uint256 indexed instanceId, uint32 step, uint256 activityId)',
  'event WorkflowCompleted(uint256 indexed instanceId)',
  'error UnknownWorkflow(uint256 instanceId)',
  'error WorkflowFinished(uint256 instanceId)',
  'error StepNotCompleted(uint256 instanceId, uint256 activityId)',
  'error NoSteps()',
] as const;

/** The subset of Multicall3 wcp uses; the full contract lives at the canonical address on public chains. */
export const MULTICALL3_ABI = [
  'function aggregate3(tuple(address target, bool allowFailure, bytes callData)[] calls) payable returns (tuple(bool success, bytes returnData)[] returnData)',
  'function getBlockNumber() view returns (uint256 blockNumber)',
  'function getCurrentBlockTimestamp() view returns (uint256 timestamp)',
  'function getEthBalance(address addr) view returns (uint256 balance)',
] as const;

/** TaskQueue status codes, as stored on chain. */
export const ActivityStatus = { None: 0, Pending: 1, Claimed: 2, Completed: 3, Failed: 4 } as const;
export type ActivityStatusCode = (typeof ActivityStatus)[keyof typeof ActivityStatus];

/** WorkflowEngine status codes: 0 None, 1 Running, 2 Completed. */
export const WorkflowStatus = { None: 0, Running: 1, Completed: 2 } as const;

/** The contract interfaces, built once from the ABIs above: every encoder and decoder of the daemon uses these. */
export const taskQueueIface = new Interface(TASK_QUEUE_ABI);
export const workflowEngineIface = new Interface(WORKFLOW_ENGINE_ABI);
export const controlPlaneIface = new Interface(SUBNET_CONTROL_PLANE_ABI);
export const multicallIface = new Interface(MULTICALL3_ABI);
