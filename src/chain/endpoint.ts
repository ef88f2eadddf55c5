/**
 * One JSON-RPC endpoint: a single POST per call over plain `fetch` with a hard timeout, and the endpoint's health
 * (consecutive failures and the backoff they earn, EWMA latency, last seen block, chain id check, error counts by
 * kind). Raw JSON-RPC, not ethers' provider: callers need the node's own error code, message and revert data,
 * a timeout per call, and no hidden caching or retrying. A JSON-RPC error answer counts as a live endpoint.
 */
import { backoffCeilingMs, type BackoffPolicy } from '../internal/backoff.ts';
import type { Logger } from '../internal/logger.ts';
import { RpcError, type RpcErrorKind } from './rpc-error.ts';

/** A snapshot of one endpoint for `/status`, `/readyz` and the tx manager's status. */
export interface EndpointStatus {
  /** `#i scheme://host:port`: never the path or user info (RPC URLs often carry API keys there). */
  url: string;
  /** Not in a failure backoff. */
  up: boolean;
  consecutiveFailures: number;
  /** EWMA of answered calls, ms. */
  latencyMs: number;
  /** Last head read from this endpoint; -1 until one was read. */
  lastBlock: number;
  /** Blocks behind the best endpoint's head; 0 when unknown. */
  lagBlocks: number;
  /** Undefined until checked; false: on another chain, never used. */
  chainIdOk: boolean | undefined;
  /** Failures since start, by kind (`rpc` counts JSON-RPC error answers). */
  errors: Record<RpcErrorKind, number>;
  lastError: string | undefined;
}

/** Mutable state of one endpoint; owned by the transport. */
export interface Endpoint {
  readonly url: string;
  readonly label: string;
  failures: number;
  downUntil: number;
  latencyMs: number;
  lastBlock: number;
  chainIdOk: boolean | undefined;
  errors: Record<RpcErrorKind, number>;
  lastError: string | undefined;
}

/** `#i scheme://host:port` only: paths and user info of RPC URLs often carry API keys. */
function endpointLabel(url: string, i: number): string {
  try {
    const u = new URL(url);
    return `#${i} ${u.protocol}//${u.host}`;
  } catch {
    return `#${i}`;
  }
}

export function newEndpoint(url: string, i: number): Endpoint {
  return {
    url,
    label: endpointLabel(url, i),
    failures: 0,
    downUntil: 0,
    latencyMs: 0,
    lastBlock: -1,
    chainIdOk: undefined,
    errors: { transport: 0, timeout: 0, http: 0, rpc: 0 },
    lastError: undefined,
  };
}

export interface EndpointCaller {
  /** One call to one endpoint; updates its health. Throws `RpcError`. */
  call<T>(ep: Endpoint, method: string, params: unknown[]): Promise<T>;
  /** Counts a failure against the endpoint and puts it in backoff (also for rate-limit answers). */
  markFailed(ep: Endpoint, err: RpcError): void;
}

/** The caller shared by every endpoint of one transport (request ids, timeout, backoff, logging). */
export function createEndpointCaller(o: {
  timeoutMs: number;
  backoff: BackoffPolicy;
  log: Logger | undefined;
  fetchFn: typeof fetch;
  now: () => number;
}): EndpointCaller {
  let nextId = 1;

  function markOk(ep: Endpoint, ms: number) {
    if (ep.failures > 0) o.log?.info('rpc endpoint recovered', { endpoint: ep.label, after_failures: ep.failures });
    ep.failures = 0;
    ep.downUntil = 0;
    ep.latencyMs = ep.latencyMs === 0 ? ms : ep.latencyMs * 0.8 + ms * 0.2;
  }

  function markFailed(ep: Endpoint, err: RpcError) {
    ep.failures += 1;
    const delay = backoffCeilingMs(o.backoff, ep.failures);
    ep.downUntil = o.now() + delay;
    const fields = { endpoint: ep.label, failures: ep.failures, backoff_ms: delay, error: err.message };
    // One warning per outage (and every tenth failure), not one per call.
    if (ep.failures === 1 || ep.failures % 10 === 0) o.log?.warn('rpc endpoint failing', fields);
    else o.log?.debug('rpc endpoint failing', fields);
  }

  function fail(ep: Endpoint, err: RpcError): RpcError {
    ep.errors[err.kind] += 1;
    ep.lastError = err.message;
    if (err.kind !== 'rpc') markFailed(ep, err);
    return err;
  }

  async function call<T>(ep: Endpoint, method: string, params: unknown[]): Promise<T> {
    const started = o.now();
    const endpoint = ep.label;
    let res: Response;
    let text: string;
    try {
      res = await o.fetchFn(ep.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw fail(
          ep,
          new RpcError('timeout', method, `timed out after ${o.timeoutMs} ms (${endpoint})`, { endpoint, cause: e }),
        );
      }
      const msg = e instanceof Error ? e.message : String(e);
      throw fail(ep, new RpcError('transport', method, `${msg} (${endpoint})`, { endpoint, cause: e }));
    }
    let body: { result?: T; error?: { code?: number; message?: string; data?: unknown } } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body && typeof body === 'object' && body.error) {
      // A JSON-RPC error is an answer: the endpoint is alive.
      markOk(ep, o.now() - started);
      const message = String(body.error.message ?? 'unknown JSON-RPC error');
      const data = body.error.data;
      const dataText = typeof data === 'string' ? data : data ? JSON.stringify(data) : '';
      const full = dataText && !message.includes(dataText) ? `${message} (${dataText})` : message;
      throw fail(
        ep,
        new RpcError('rpc', method, full, {
          ...(typeof body.error.code === 'number' ? { rpcCode: body.error.code } : {}),
          httpStatus: res.status,
          data,
          endpoint,
        }),
      );
    }
    if (!res.ok) {
      throw fail(
        ep,
        new RpcError('http', method, `HTTP ${res.status} ${text.slice(0, 200)} (${endpoint})`, {
          httpStatus: res.status,
          endpoint,
        }),
      );
    }
    if (!body || typeof body !== 'object' || !('result' in body)) {
      throw fail(
        ep,
        new RpcError('transport', method, `not a JSON-RPC reply: ${text.slice(0, 200)} (${endpoint})`, { endpoint }),
      );
    }
    markOk(ep, o.now() - started);
    return body.result as T;
  }

  return { call, markFailed };
}
