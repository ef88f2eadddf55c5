/**
 * The one error type of a JSON-RPC call, and the one retry predicate. Every failure of the transport keeps what a
 * caller needs to classify it: the `kind` (no answer, timeout, HTTP status, or the node's JSON-RPC error), the
 * JSON-RPC `rpcCode` and `data` (revert data lives there), the HTTP status, the method and the endpoint label.
 */
import { WcpError } from '../internal/errors.ts';

/** `transport`: no answer (connection, unreadable body); `timeout`; `http`: an HTTP error status; `rpc`: the node's answer. */
export type RpcErrorKind = 'transport' | 'timeout' | 'http' | 'rpc';

/** JSON-RPC error answers that mean "try again" (lagging load-balanced nodes, rate limits). */
const TRANSIENT_RPC =
  /header not found|unknown block|block not found|rate limit|too many requests|temporarily|try again|busy|capacity/i;

/** Rate limits: an answer about the endpoint, not about the request, so another endpoint is tried. */
const RATE_LIMIT = /rate limit|rate exceeded|too many requests/i;

/** An RPC failure. `retryable` is true for transport/timeout/5xx/429/408 and for known transient node answers. */
export class RpcError extends WcpError {
  readonly kind: RpcErrorKind;
  readonly method: string;
  readonly rpcCode: number | undefined;
  readonly httpStatus: number | undefined;
  /** The JSON-RPC error's `data` (revert data for `eth_call` / `eth_estimateGas`). */
  readonly data: unknown;
  /** `#i scheme://host:port` of the endpoint that failed, when known. */
  readonly endpoint: string;

  constructor(
    kind: RpcErrorKind,
    method: string,
    message: string,
    opts: {
      rpcCode?: number;
      httpStatus?: number;
      data?: unknown;
      endpoint?: string;
      cause?: unknown;
      retryable?: boolean;
    } = {},
  ) {
    const retryable =
      opts.retryable ??
      (kind === 'rpc' ? TRANSIENT_RPC.test(message) : kind !== 'http' || isTransientStatus(opts.httpStatus));
    super(kind === 'rpc' ? 'CHAIN_BAD_DATA' : 'CHAIN_UNREACHABLE', `${method}: ${message}`, {
      retryable,
      cause: opts.cause,
    });
    this.name = 'RpcError';
    this.kind = kind;
    this.method = method;
    this.rpcCode = opts.rpcCode;
    this.httpStatus = opts.httpStatus;
    this.data = opts.data;
    this.endpoint = opts.endpoint ?? '';
  }
}

function isTransientStatus(status: number | undefined): boolean {
  return status === undefined || status >= 500 || status === 429 || status === 408;
}

/** The one retry decision for RPC failures: worth trying again later (the error says so). */
export function shouldRetry(e: unknown): boolean {
  return e instanceof WcpError && e.retryable;
}

/**
 * Whether a failure is the endpoint's fault, so the next endpoint is tried: no answer, an HTTP error, or a rate
 * limit. Any other JSON-RPC error is the node's answer about the request (a revert, an eth_getLogs range error):
 * another node would most likely say the same, and the caller must see it.
 */
export function isEndpointFault(e: RpcError): boolean {
  // Not -32005 alone: Infura-style nodes use it for eth_getLogs result limits too, which the caller must see.
  return e.kind !== 'rpc' || RATE_LIMIT.test(e.message);
}

export const toHex = (n: number | bigint): string => `0x${n.toString(16)}`;
