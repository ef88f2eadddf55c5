/**
 * Event topics of the contracts, from the Interfaces of `abi.ts`: topic0 of each event wcp filters on, and the
 * encodings of indexed arguments (`eth_getLogs` topic filters compare 32-byte words, lower-cased here).
 */
import { id as keccakId, zeroPadValue } from 'ethers';
import { taskQueueIface, workflowEngineIface } from './abi.ts';

/** topic0 of the events the reconciler scans and follows. */
export const TOPICS = {
  claimed: taskQueueIface.getEvent('ActivityClaimed')!.topicHash,
  heartbeat: taskQueueIface.getEvent('ActivityHeartbeat')!.topicHash,
  completed: taskQueueIface.getEvent('ActivityCompleted')!.topicHash,
  failed: taskQueueIface.getEvent('ActivityFailed')!.topicHash,
  enqueued: taskQueueIface.getEvent('ActivityEnqueued')!.topicHash,
  wfResumed: workflowEngineIface.getEvent('WorkflowResumed')!.topicHash,
  wfCompleted: workflowEngineIface.getEvent('WorkflowCompleted')!.topicHash,
} as const;

/** keccak256 of the queue name: the indexed `queueKey` of ActivityEnqueued. */
export const queueKeyTopic = (queue: string): string => keccakId(queue).toLowerCase();
/** An indexed address (a worker). */
export const addressTopic = (addr: string): string => zeroPadValue(addr.toLowerCase(), 32).toLowerCase();
/**
 * An indexed uint256 (an activity id, a workflow instance): 32 bytes, 64 hex digits. (Padding to an even number
 * of digits first is not enough: 256 is `0x100`, three digits, which ethers refuses as bytes; every scan that
 * asked for the events of a workflow instance between 256 and 4095 failed, and the reconciler backed off for
 * good.)
 */
export const uintTopic = (n: string | bigint): string => {
  const v = BigInt(n);
  if (v < 0n || v >= 1n << 256n) throw new RangeError(`not a uint256: ${String(n)}`);
  return `0x${v.toString(16).padStart(64, '0')}`;
};
