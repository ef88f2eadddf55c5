/**
 * A minimal JSON-RPC transport for the reconciler thread: one POST per call, a per-request timeout, failover
 * across several endpoints (the last good one is tried first), and errors that keep what a caller needs to
 * classify them (`kind`, the JSON-RPC `rpcCode`, the HTTP status). ethers is used only for ABI coding; raw
 * JSON-RPC keeps eth_getLogs errors unwrapped, which the adaptive log fetcher classifies by code and message.
 */
import { WcpError } from '../internal/errors.ts';

/** The seam tests point at anvil, a proxy or a fake. */
export interface RpcTransport {
  request<T>(method: string, params: unknown[]): Promise<T>;
}

export type RpcErrorKind = 'transport' | 'timeout' | 'http' | 'rpc';

/** An RPC failure. `retryable` is true for transport/timeout/5xx/429 and for known transient node answers. */
export class RpcError extends WcpError {
  readonly kind: RpcErrorKind;
  readonly rpcCode: number | undefined;
  readonly httpStatus: number | undefined;
  readonly method: string;

  constructor(
    kind: RpcErrorKind,
    method: string,
    message: string,
    opts: { rpcCode?: number; httpStatus?: number; cause?: unknown; retryable?: boolean } = {},
  ) {
    const retryable = opts.retryable ?? kind !== 'rpc';
    super(kind === 'rpc' ? 'CHAIN_BAD_DATA' : 'CHAIN_UNREACHABLE', `${method}: ${message}`, {
      retryable,
      cause: opts.cause,
    });
    this.kind = kind;
    this.method = method;
    this.rpcCode = opts.rpcCode;
    this.httpStatus = opts.httpStatus;
  }
}

/** JSON-RPC error answers that mean "try again" (lagging load-balanced nodes, rate limits). */
const TRANSIENT_RPC = /header not found|unknown block|block not found|rate limit|too many requests|temporarily|try again|busy|capacity/i;

export interface RpcTransportOptions {
  urls: string[];
  /** Per request; default 10 000. */
  timeoutMs?: number;
  fetchFn?: typeof fetch;
}

export function createRpcTransport(opts: RpcTransportOptions): RpcTransport {
  if (opts.urls.length === 0) throw new WcpError('CONFIG_INVALID', 'no RPC endpoint configured');
  const fetchFn = opts.fetchFn ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let preferred = 0;
  let nextId = 1;

  async function once<T>(url: string, method: string, params: unknown[]): Promise<T> {
    let res: Response;
    try {
      res = await fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const name = (e as { name?: string }).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new RpcError('timeout', method, `request timed out after ${timeoutMs} ms`, { cause: e });
      }
      throw new RpcError('transport', method, e instanceof Error ? e.message : String(e), { cause: e });
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new RpcError('transport', method, `reading the reply failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    let body: { result?: T; error?: { code?: number; message?: string; data?: unknown } } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body?.error) {
      const message = String(body.error.message ?? 'unknown error');
      const dataText = typeof body.error.data === 'string' ? body.error.data : body.error.data ? JSON.stringify(body.error.data) : '';
      const full = dataText && !message.includes(dataText) ? `${message} (${dataText})` : message;
      return Promise.reject(
        new RpcError('rpc', method, full, {
          ...(typeof body.error.code === 'number' ? { rpcCode: body.error.code } : {}),
          httpStatus: res.status,
          retryable: TRANSIENT_RPC.test(full),
        }),
      );
    }
    if (!res.ok) {
      throw new RpcError('http', method, `HTTP ${res.status} ${text.slice(0, 200)}`, {
        httpStatus: res.status,
        retryable: res.status >= 500 || res.status === 429 || res.status === 408,
      });
    }
    if (!body || !('result' in body)) throw new RpcError('transport', method, `not a JSON-RPC reply: ${text.slice(0, 200)}`);
    return body.result as T;
  }

  return {
    async request<T>(method: string, params: unknown[]): Promise<T> {
      let last: unknown;
      for (let i = 0; i < opts.urls.length; i++) {
        const idx = (preferred + i) % opts.urls.length;
        try {
          const r = await once<T>(opts.urls[idx] as string, method, params);
          preferred = idx;
          return r;
        } catch (e) {
          // A JSON-RPC error is the node's answer about the request, not the endpoint's failure: no failover
          // (another node would most likely say the same, and eth_getLogs range errors must reach the caller).
          if (e instanceof RpcError && e.kind === 'rpc') throw e;
          last = e;
        }
      }
      throw last;
    },
  };
}

/** Whether an error from the transport (or anything else) is worth retrying later. */
export function isRetryable(e: unknown): boolean {
  return e instanceof WcpError ? e.retryable : false;
}

export const toHex = (n: number | bigint): string => `0x${n.toString(16)}`;
