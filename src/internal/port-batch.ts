/**
 * Messages between threads, coalesced: every message posted to a port in the same turn of the event loop goes as
 * one `postMessage` (one structured clone, one wake-up of the other thread) instead of one each. The executor link
 * sends several messages per activity each way (assign, accepted, credits, completion, its ack); under load many
 * activities' messages fall in the same turn. Order is kept; a lone message goes as itself.
 */

/** The envelope of two or more messages. */
export interface PortBatch<T> {
  type: 'wcp.batch';
  messages: T[];
}

export interface BatchedPoster<T> {
  /** Queues `msg`; the queue is posted at the end of this turn (a microtask). */
  post(msg: T): void;
  /** Posts what is queued now (before the port closes). */
  flush(): void;
}

/**
 * A poster over `post` (a port's postMessage). `post` throwing for a batch (a message that cannot be cloned) posts
 * the messages one by one, so only the bad one is lost, and `onError` is told of each that failed.
 */
export function batchedPoster<T>(
  post: (m: T | PortBatch<T>) => void,
  onError: (msg: T, e: unknown) => void,
): BatchedPoster<T> {
  let queue: T[] | null = null;
  const one = (m: T) => {
    try {
      post(m);
    } catch (e) {
      onError(m, e);
    }
  };
  const flush = () => {
    const q = queue;
    queue = null;
    if (!q) return;
    if (q.length === 1) return one(q[0] as T);
    try {
      post({ type: 'wcp.batch', messages: q });
    } catch {
      for (const m of q) one(m);
    }
  };
  return {
    post(msg) {
      if (queue) queue.push(msg);
      else {
        queue = [msg];
        queueMicrotask(flush);
      }
    },
    flush,
  };
}

/** Calls `each` for every message `m` carries: the batch's, in order, or `m` itself. */
export function unbatch(m: unknown, each: (msg: unknown) => void): void {
  if (
    m !== null &&
    typeof m === 'object' &&
    (m as { type?: unknown }).type === 'wcp.batch' &&
    Array.isArray((m as { messages?: unknown }).messages)
  ) {
    for (const x of (m as PortBatch<unknown>).messages) each(x);
  } else each(m);
}
