/**
 * The executor's StorageRequests to wcp: each waits (bounded) for an accepted wcp stream, goes out with a fresh
 * request id, and settles on the matching StorageGrant, on its timeout, or when the stream is lost before the
 * grant arrived. Grants for unknown ids are ignored.
 */
import type { ExecutorMessageWire } from '../taskstream/protocol.ts';
import type { StorageGrant } from './run-task.ts';

export interface StorageRequestsOptions {
  executorId: string;
  /** Bounds both the wait for a stream and the wait for the grant. */
  timeoutMs: number;
  /** A writer to the current accepted stream, or undefined while there is none. */
  current(): ((msg: ExecutorMessageWire) => boolean) | undefined;
  stopped(): boolean;
}

export interface StorageRequests {
  request(activityId: string, key: string, method: 'GET' | 'PUT'): Promise<StorageGrant>;
  /** A StorageGrant from wcp. */
  onGrant(body: Record<string, unknown>): void;
  /** The stream was lost: every outstanding request fails. */
  rejectAll(why: string): void;
  /** A stream became current, or the executor stopped: waiting requests look again. */
  wake(): void;
}

interface Pending {
  resolve(g: StorageGrant): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export function createStorageRequests(opts: StorageRequestsOptions): StorageRequests {
  const pending = new Map<string, Pending>();
  const waiters = new Set<() => void>();
  let seq = 0;

  async function waitForStream(): Promise<(msg: ExecutorMessageWire) => boolean> {
    const until = Date.now() + opts.timeoutMs;
    for (;;) {
      const w = opts.current();
      if (w !== undefined) return w;
      const left = until - Date.now();
      if (left <= 0 || opts.stopped()) throw new Error('wcp is not connected');
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 1000));
        function done(): void {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  async function request(activityId: string, key: string, method: 'GET' | 'PUT'): Promise<StorageGrant> {
    const write = await waitForStream();
    seq += 1;
    const requestId = `${opts.executorId}-${seq}`.slice(-128);
    return new Promise<StorageGrant>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(requestId);
        reject(new Error(`no storage grant within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      pending.set(requestId, { resolve, reject, timer });
      write({ storage_request: { request_id: requestId, activity_id: activityId, key, method } });
    });
  }

  function onGrant(body: Record<string, unknown>): void {
    const p = pending.get(String(body.request_id));
    if (p === undefined) return;
    pending.delete(String(body.request_id));
    clearTimeout(p.timer);
    if (typeof body.error === 'string' && body.error !== '') {
      p.reject(new Error(`storage request refused: ${body.error}`));
      return;
    }
    p.resolve({
      url: String(body.url),
      method: String(body.method),
      expiresAtMs: Number(body.expires_at_unix_ms),
      headers: (body.headers as Record<string, string> | undefined) ?? {},
    });
  }

  function rejectAll(why: string): void {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      p.reject(new Error(why));
      pending.delete(id);
    }
  }

  function wake(): void {
    for (const w of waiters) w();
  }

  return { request, onGrant, rejectAll, wake };
}
