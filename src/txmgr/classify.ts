/**
 * Transaction error classification: any failure of a JSON-RPC call (the transport's `RpcError`, an ethers
 * error, a plain Error) becomes one stable class of what it means for a transaction, an `ErrorCode` and whether
 * the tx manager tries again. Node messages differ between geth, anvil/reth, Nethermind, Erigon and Besu, so
 * matching is on lower-cased substrings, most specific first.
 */
import { RpcError } from '../chain/rpc-error.ts';
import type { ErrorCode } from '../internal/errors.ts';

export type TxErrorClass =
  /** The nonce is already used on chain (maybe by one of our own hashes). */
  | 'nonce_too_low'
  /** The node already has this exact tx: treat as sent. */
  | 'already_known'
  /** A same-nonce tx with fees too close to ours is pending: bump more. */
  | 'replacement_underpriced'
  /** Fees below the node's minimum or the next base fee: bump. */
  | 'fee_too_low'
  | 'insufficient_funds'
  | 'reverted'
  /** The node refuses the tx for good (intrinsic gas, gas limit, bad signature, …). */
  | 'rejected'
  | 'rate_limited'
  /** Connection refused/reset, HTTP 5xx, bad body: the call may or may not have reached the node. */
  | 'transport'
  | 'timeout'
  | 'unknown';

export interface Classified {
  cls: TxErrorClass;
  code: ErrorCode;
  retryable: boolean;
  message: string;
}

const PATTERNS: Array<[TxErrorClass, RegExp]> = [
  [
    'nonce_too_low',
    /nonce too low|nonce is too low|nonce has already been used|oldnonce|nonce.*already.*used|invalid nonce.*lower|transaction nonce.*lower/,
  ],
  [
    'insufficient_funds',
    /insufficient funds|insufficient balance|not enough funds|doesn't have enough funds|insufficientfunds/,
  ],
  [
    'replacement_underpriced',
    /replacement transaction underpriced|replacement fee too low|replacementnotallowed|too low to replace|replacement.*underpriced/,
  ],
  [
    'already_known',
    /already known|already imported|alreadyknown|known transaction|already in (the )?(tx|transaction)?\s*pool|transaction already exists/,
  ],
  [
    'fee_too_low',
    /underpriced|less than block base fee|fee cap less than|feetoolow|fee too low|gas price too low|max fee per gas.*too low|priority fee.*too low|maxfeepergas.*below/,
  ],
  ['rate_limited', /rate limit|too many requests|request limit|exceeded.*(capacity|quota)/],
  ['reverted', /execution reverted|revert|vm exception|out of gas|invalid opcode/],
  ['timeout', /timeout|timed out/],
];

const CODE_OF: Record<TxErrorClass, ErrorCode> = {
  nonce_too_low: 'TX_NONCE_TOO_LOW',
  already_known: 'TX_ALREADY_KNOWN',
  replacement_underpriced: 'TX_UNDERPRICED',
  fee_too_low: 'TX_UNDERPRICED',
  insufficient_funds: 'TX_INSUFFICIENT_FUNDS',
  reverted: 'TX_REVERTED',
  rejected: 'TX_SEND_FAILED',
  rate_limited: 'CHAIN_UNREACHABLE',
  transport: 'CHAIN_UNREACHABLE',
  timeout: 'CHAIN_UNREACHABLE',
  unknown: 'TX_SEND_FAILED',
};

const RETRYABLE: Record<TxErrorClass, boolean> = {
  nonce_too_low: true,
  already_known: true,
  replacement_underpriced: true,
  fee_too_low: true,
  insufficient_funds: true,
  reverted: false,
  rejected: false,
  rate_limited: true,
  transport: true,
  timeout: true,
  unknown: true,
};

/** ethers v6 error codes (`err.code` strings) with a direct meaning. */
const ETHERS_CODES: Record<string, TxErrorClass> = {
  NONCE_EXPIRED: 'nonce_too_low',
  REPLACEMENT_UNDERPRICED: 'replacement_underpriced',
  INSUFFICIENT_FUNDS: 'insufficient_funds',
  CALL_EXCEPTION: 'reverted',
  TIMEOUT: 'timeout',
  NETWORK_ERROR: 'transport',
};

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

function make(cls: TxErrorClass, message: string): Classified {
  return { cls, code: CODE_OF[cls], retryable: RETRYABLE[cls], message };
}

/** Classifies a failed RPC call: by the transport's error kind, then ethers' `code`, the message, the JSON-RPC code. */
export function classifyRpcError(e: unknown): Classified {
  const message = messageOf(e);
  const lower = message.toLowerCase();
  const o = (e && typeof e === 'object' ? e : {}) as Record<string, unknown>;
  // No answer from the node.
  if (e instanceof RpcError && e.kind !== 'rpc') {
    if (e.kind === 'timeout') return make('timeout', message);
    if (e.httpStatus === 429) return make('rate_limited', message);
    return make('transport', message);
  }
  // ethers errors: the string code first, then the inner JSON-RPC message (ethers wraps it in `error`/`info`).
  if (typeof o.code === 'string' && o.code in ETHERS_CODES) {
    return make(ETHERS_CODES[o.code] as TxErrorClass, message);
  }
  for (const [cls, re] of PATTERNS) if (re.test(lower)) return make(cls, message);
  // JSON-RPC codes without a telling message.
  if (typeof o.rpcCode === 'number') {
    if (o.rpcCode === 3) return make('reverted', message);
    if (o.rpcCode === -32005) return make('rate_limited', message);
    if (o.rpcCode === -32601 || o.rpcCode === -32602 || o.rpcCode === -32600) return make('rejected', message);
    // -32000/-32003/-32010 from eth_sendRawTransaction with an unknown message: the node refused the tx.
    if (e instanceof RpcError && e.method === 'eth_sendRawTransaction') return make('rejected', message);
    return make('unknown', message);
  }
  if (/econnrefused|econnreset|socket|network|fetch failed|connection|unable to connect/.test(lower)) {
    return make('transport', message);
  }
  return make('unknown', message);
}
