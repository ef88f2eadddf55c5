/**
 * What the bridge tells the supervisor: every `ExecutorEvent` message goes through `send`, which never
 * throws, and every refused executor message through `reject`, which also logs it (rate-limited).
 */
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { ExecutorEvent } from './messages.ts';

/** The bridge's outlet to the supervisor. */
export interface BridgeEvents {
  /** Emits one message; a throwing `emit` is logged, never propagated. */
  send(msg: ExecutorEvent): void;
  /** Reports a refused executor message: a `rejected` event, and a warning (at most 20 per 10 s, then a count). */
  reject(reason: string, activityId?: string): void;
}

const REJECT_LOG_WINDOW_MS = 10_000;
const REJECT_LOGS_PER_WINDOW = 20;

export function createBridgeEvents(emit: (msg: ExecutorEvent) => void, log: Logger): BridgeEvents {
  let rejectLogWindow = 0;
  let rejectLogCount = 0;

  const send = (msg: ExecutorEvent): void => {
    try {
      emit(msg);
    } catch (e) {
      log.error('Could not emit to the supervisor.', { type: msg.type, error: errorText(e) });
    }
  };

  function reject(reason: string, activityId?: string): void {
    const now = Date.now();
    if (now - rejectLogWindow > REJECT_LOG_WINDOW_MS) {
      if (rejectLogCount > REJECT_LOGS_PER_WINDOW) {
        log.warn('Suppressed rejected-message logs.', { count: rejectLogCount - REJECT_LOGS_PER_WINDOW });
      }
      rejectLogWindow = now;
      rejectLogCount = 0;
    }
    rejectLogCount += 1;
    if (rejectLogCount <= REJECT_LOGS_PER_WINDOW)
      log.warn('Rejected an executor message.', { reason, activity_id: activityId });
    send(
      activityId === undefined ? { type: 'rejected', reason } : { type: 'rejected', reason, activity_id: activityId },
    );
  }

  return { send, reject };
}
