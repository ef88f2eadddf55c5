/**
 * Whether a Completion's output objects were really uploaded, where the storage service can tell: each ref gets a
 * presigned GET URL through the broker and an HTTP HEAD (a GET of one byte when the URL refuses HEAD, as an S3
 * URL signed for GET does). A 404 or 410 means the object does not exist. Anything else that is not a clear
 * answer — the broker or the object store unreachable, a timeout, a 5xx — is `unknown` and never blocks a
 * Completion: a storage outage must not turn finished work into failures.
 */
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { parseBlobRef } from '../taskstream/refs.ts';
import type { StorageBrokerLike } from './storage.ts';

/** What storage says about one object. */
export type ObjectState = 'exists' | 'missing' | 'unknown';

export interface OutputExistenceOptions {
  broker: StorageBrokerLike;
  logger: Logger;
  /** Per HTTP request (default 5000). */
  timeoutMs?: number;
}

/** Checks the objects behind output refs. */
export interface OutputExistence {
  /** The output names (of `outputRefs`, all valid blob refs) whose objects storage says do not exist. */
  missing(outputRefs: Record<string, string>): Promise<string[]>;
}

export function createOutputExistence(opts: OutputExistenceOptions): OutputExistence {
  const timeoutMs = opts.timeoutMs ?? 5000;

  async function request(url: string, method: 'HEAD' | 'GET', headers: Record<string, string>): Promise<number> {
    const res = await fetch(url, {
      method,
      headers: method === 'GET' ? { ...headers, range: 'bytes=0-0' } : headers,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'follow',
    });
    await res.body?.cancel().catch(() => undefined);
    return res.status;
  }

  async function stateOf(ref: string): Promise<ObjectState> {
    const b = parseBlobRef(ref);
    if (b === null) return 'unknown';
    let grant: Awaited<ReturnType<StorageBrokerLike['presign']>>;
    try {
      grant = await opts.broker.presign({
        activityId: b.namespace,
        actingActivityId: b.namespace,
        key: b.key,
        method: 'GET',
        ttlSeconds: 60,
      });
    } catch (e) {
      opts.logger.debug('Cannot presign an output existence check.', { ref, error: errorText(e) });
      return 'unknown';
    }
    // Only headers a GET needs (never the PUT's content-type) go along.
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(grant.headers ?? {})) if (k !== 'content-type') headers[k] = v;
    try {
      let status = await request(grant.url, 'HEAD', headers);
      if (status === 403 || status === 405) status = await request(grant.url, 'GET', headers);
      if (status === 404 || status === 410) return 'missing';
      // 416: a ranged GET of an empty object — it exists.
      if ((status >= 200 && status < 300) || status === 416) return 'exists';
      return 'unknown';
    } catch (e) {
      opts.logger.debug('Output existence check failed.', { ref, error: errorText(e) });
      return 'unknown';
    }
  }

  return {
    async missing(outputRefs) {
      const entries = Object.entries(outputRefs);
      const states = await Promise.all(entries.map(([, ref]) => stateOf(ref)));
      return entries.filter((_, i) => states[i] === 'missing').map(([name]) => name);
    },
  };
}
