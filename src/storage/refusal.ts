/**
 * What a failed presign is about, in one place: the broker (which maps gRPC answers to error codes), the bridge's
 * storage health and assignments, the doctor and `/readyz` all decide from `classifyStorageFailure`.
 *
 * - `unreachable` — the service was not reached or did not answer (STORAGE_UNAVAILABLE): wait, probe, retry;
 * - `worker` — the service refuses this worker, whatever the activity (STORAGE_REFUSED, or an unusable answer):
 *   it is not the storage service (UNIMPLEMENTED), it refuses the worker's session or signature
 *   (UNAUTHENTICATED), it speaks another protocol version, or its answers fail validation. Claims of work needing
 *   storage pause and claimed work waits: failing activities would not help, the operator must act;
 * - `activity` — a refusal about one activity's data (STORAGE_DENIED: PERMISSION_DENIED for a namespace it is not
 *   entitled to, an invalid key, a local confinement refusal): that activity fails, the worker goes on. The
 *   storage probe asks for an object no activity of this worker holds, so this is its expected answer: the
 *   service answered and accepted the session;
 * - `unsettled` — the local confinement check, or the service's own (PERMISSION_DENIED "… does not exist on chain"),
 *   found an activity the chain does not know (STORAGE_CHAIN_UNSETTLED, maybe mid-reorg, final after the broker's
 *   `chainSettleMs`): the dispatch waits and retries; it says nothing of the service's health.
 *
 * A worker-level refusal carries a stable reason (`refusal=<reason>` as its first detail line, so it survives the
 * thread boundary as a WireError); the verifier's reason codes (auth.ts `AuthFailure`) come as the prefix of an
 * UNAUTHENTICATED answer's details (`delegation_too_long: …`).
 */
import { WcpError } from '../internal/errors.ts';

/** Why the storage service refuses this worker (stable codes, shown in `/status`, `/readyz` and the doctor). */
export const STORAGE_REFUSAL_REASONS = [
  'not_storage_service',
  'session_refused',
  'session_ttl_too_long',
  'session_expired',
  'protocol_mismatch',
  'bad_answer',
] as const;
export type StorageRefusalReason = (typeof STORAGE_REFUSAL_REASONS)[number];

/** What one presign failure is about. */
export type StorageFailure =
  | { kind: 'unreachable' }
  | { kind: 'worker'; reason: StorageRefusalReason }
  | { kind: 'activity' }
  /** A local check found an activity the chain does not know yet (maybe mid-reorg): retry later; says nothing of the service. */
  | { kind: 'unsettled' };

/** gRPC status codes (numeric, as on the wire) this module reads. */
const GRPC = { FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, UNAUTHENTICATED: 16 } as const;

const REASON_LINE = /^refusal=([a-z_]+)$/;
const REASONS = new Set<string>(STORAGE_REFUSAL_REASONS);

/**
 * The worker-level reason of a gRPC refusal, or null when the status is not about the worker (PERMISSION_DENIED,
 * INVALID_ARGUMENT, NOT_FOUND …: about the request's data). `details` is the server's text (untrusted).
 */
export function workerRefusalOfGrpc(code: number, details: string): StorageRefusalReason | null {
  if (code === GRPC.UNIMPLEMENTED) return 'not_storage_service';
  if (code === GRPC.UNAUTHENTICATED) {
    const verifierReason = /^\s*([a-z_]+):/.exec(details)?.[1];
    if (verifierReason === 'delegation_too_long') return 'session_ttl_too_long';
    if (verifierReason === 'delegation_expired') return 'session_expired';
    return 'session_refused';
  }
  if (code === GRPC.FAILED_PRECONDITION && /protocol version/i.test(details)) return 'protocol_mismatch';
  return null;
}

/** A STORAGE_REFUSED error for `reason` (retryable: the same request succeeds once the cause is fixed). */
export function storageRefused(
  reason: StorageRefusalReason,
  message: string,
  details: string[] = [],
  cause?: unknown,
): WcpError {
  return new WcpError('STORAGE_REFUSED', message, {
    retryable: true,
    details: [`refusal=${reason}`, ...details],
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Classifies any presign failure (a WcpError or its wire form; anything without a code counts as unreachable). */
export function classifyStorageFailure(e: unknown): StorageFailure {
  const err = e as { code?: unknown; details?: unknown } | null;
  const code = err?.code;
  if (code === 'STORAGE_REFUSED') {
    const first = Array.isArray(err?.details) ? String(err.details[0] ?? '') : '';
    const reason = REASON_LINE.exec(first)?.[1];
    return {
      kind: 'worker',
      reason: reason !== undefined && REASONS.has(reason) ? (reason as StorageRefusalReason) : 'session_refused',
    };
  }
  if (code === 'STORAGE_BAD_RESPONSE') return { kind: 'worker', reason: 'bad_answer' };
  if (code === 'STORAGE_DENIED') return { kind: 'activity' };
  if (code === 'STORAGE_CHAIN_UNSETTLED') return { kind: 'unsettled' };
  return { kind: 'unreachable' };
}

/** The cause and the fix of a worker-level refusal, in an operator's words. */
export function describeRefusal(reason: StorageRefusalReason, endpoint: string): { cause: string; fix: string } {
  switch (reason) {
    case 'not_storage_service':
      return {
        cause: `${endpoint} is a gRPC server but not the storage service (UNIMPLEMENTED)`,
        fix: 'point subnet_api.grpc_endpoint at the subnet-api (is it the executor port?)',
      };
    case 'session_ttl_too_long':
      return {
        cause: `${endpoint} refuses the storage session: subnet_api.session_ttl is longer than it accepts`,
        fix: 'lower subnet_api.session_ttl to what the subnet-api allows, then restart wcp',
      };
    case 'session_expired':
      return {
        cause: `the storage session expired (subnet_api.session_ttl)`,
        fix: 'restart wcp to renew the session (check this host clock too)',
      };
    case 'session_refused':
      return {
        cause: `${endpoint} refuses the worker's storage session or signature (UNAUTHENTICATED)`,
        fix: "check ethereum.chain_id and this host's clock; ask the subnet operator whether it accepts this worker",
      };
    case 'protocol_mismatch':
      return {
        cause: `${endpoint} speaks another storage protocol version`,
        fix: 'upgrade wcp or the subnet-api so their storage protocol versions match',
      };
    case 'bad_answer':
      return {
        cause: `${endpoint} sends presigned URLs that fail wcp's checks`,
        fix: "check both clocks and the subnet-api's URL settings (wcp logs what was wrong)",
      };
  }
}
