/**
 * One error type for the whole daemon: a stable string `code` (never parse messages, never rely on class names:
 * a compiled binary may rename classes), a `retryable` flag, a short message and optional detail lines.
 * Errors cross threads as plain `{ code, message, retryable, details }` objects (see `toWire`).
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'CLI_USAGE'
  | 'STORE_OPEN_FAILED'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED'
  | 'CHAIN_UNREACHABLE'
  | 'CHAIN_ID_MISMATCH'
  | 'CHAIN_BAD_DATA'
  | 'WORKER_NOT_ACTIVE'
  | 'CONTRACT_INVALID'
  | 'LISTEN_FAILED'
  | 'TX_NONCE_TOO_LOW'
  | 'TX_UNDERPRICED'
  | 'TX_INSUFFICIENT_FUNDS'
  | 'TX_ALREADY_KNOWN'
  | 'TX_REVERTED'
  | 'TX_SEND_FAILED'
  | 'TX_REFUSED'
  | 'EXECUTOR_PROTOCOL'
  | 'EXECUTOR_UNAVAILABLE'
  | 'EXECUTOR_IN_USE'
  | 'STORAGE_UNAVAILABLE'
  | 'STORAGE_DENIED'
  | 'STORAGE_CHAIN_UNSETTLED'
  | 'STORAGE_REFUSED'
  | 'ACTIVITY_SPEC_INVALID'
  | 'SHUTDOWN'
  | 'INTERNAL'
  | 'STORAGE_BAD_RESPONSE';

export interface WireError {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  details?: string[];
}

export class WcpError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: string[];

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; details?: string[]; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'WcpError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details ?? [];
  }

  /** Message plus detail lines, for a terminal. */
  describe(): string {
    return [`${this.message} [${this.code}]`, ...this.details.map((d) => `  - ${d}`)].join('\n');
  }
}

export function isWcpError(e: unknown, code?: ErrorCode): e is WcpError {
  return e instanceof WcpError && (code === undefined || e.code === code);
}

export function toWire(e: unknown): WireError {
  if (e instanceof WcpError) {
    return { code: e.code, message: e.message, retryable: e.retryable, details: e.details };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'INTERNAL', message, retryable: false };
}

/** Short text of any thrown value, for logs. */
export function errorText(e: unknown): string {
  if (e instanceof WcpError) return `${e.message} [${e.code}]`;
  if (e instanceof Error) return e.message;
  return String(e);
}
