/**
 * wcp's client of the subnet-api's storage surface (`wcp.storage.v1.StorageBroker`, proto/storage/v1/storage.proto).
 *
 * wcp never holds storage credentials: it asks the subnet-api for a presigned URL scoped to one activity, one
 * object key and one HTTP method, and hands that URL to the executor. Every request is signed with the session
 * key the wallet delegated to (auth.ts), so the subnet-api can check on chain that this worker holds the activity
 * asked for; before asking, the broker checks the confinement rules itself (entitlement.ts): PUT only in the
 * acting activity's namespace, GET of another activity's namespace only for an earlier step of the same workflow.
 * The subnet-api's answer is untrusted: every field is checked (wire.ts). A presigned URL is a credential, so logs
 * only ever show it without its query string (`redactUrl`).
 */
import { type ChannelCredentials, type Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { PresignSigner } from './auth.ts';
import { decideAccess, type EntitlementChain, isUnsettledRefusal } from './entitlement.ts';
import { storageRefused } from './refusal.ts';
import {
  activityIdProblem,
  delegationToWire,
  isUnsettledDenial,
  loadStorageBrokerService,
  mapGrpcError,
  objectKeyProblem,
  type PresignedUrl,
  type PresignMethod,
  type PresignRequestWire,
  type PresignResponseWire,
  paramProblem,
  redactUrl,
  STORAGE_PROTOCOL_VERSION,
  validateResponse,
} from './wire.ts';

export {
  activityIdProblem,
  isUnsettledDenial,
  loadStorageBrokerService,
  objectKeyProblem,
  type PresignedUrl,
  type PresignMethod,
  type PresignRequestWire,
  type PresignResponseWire,
  redactUrl,
  STORAGE_PROTOCOL_VERSION,
  STORAGE_SERVICE_NAME,
  workerAddressProblem,
} from './wire.ts';

export interface PresignParams {
  /** The namespace the object lives in (`activity_id` on the wire): an activity id, or e.g. `seed`. */
  activityId: string;
  /**
   * The activity this worker holds and asks for (default: `activityId`). A PUT must be in its namespace; a GET
   * elsewhere must be an earlier step of its workflow, or a namespace its owner may read (the server's call).
   * '' makes an owner's direct request to a namespace it owns (e.g. seeding inputs), checked by the server only.
   */
  actingActivityId?: string;
  /** Object key relative to the namespace, e.g. `outputs/video.mp4`. */
  key: string;
  method: PresignMethod;
  /** For PUT: the Content-Type the upload will carry. */
  contentType?: string;
  /** Requested lifetime in seconds (default 300); the server may grant less, never more. */
  ttlSeconds?: number;
  /** Cancels the call (rejects with STORAGE_UNAVAILABLE, retryable). */
  signal?: AbortSignal;
  /** A health probe: its refusal is an expected answer, so failures are logged at debug, not warn. */
  probe?: boolean;
}

export interface StorageBroker {
  /**
   * Asks the subnet-api for a presigned URL. Rejects with `WcpError`:
   * - `STORAGE_UNAVAILABLE` (retryable): endpoint down, deadline exceeded, server overloaded or failing, cancelled,
   *   or the chain read of a confinement check failed;
   * - `STORAGE_CHAIN_UNSETTLED` (retryable): the local check, or the service (PERMISSION_DENIED "… does not exist on
   *   chain …"), found an activity the chain does not know; it may be mid-reorg, so the same access is refused this
   *   way until `chainSettleMs` after its first refusal;
   * - `STORAGE_REFUSED` (retryable once the cause is fixed): the service refuses this worker whatever the activity
   *   — not the storage service, the session or signature refused, an expired session (refusal.ts names why);
   * - `STORAGE_DENIED` (not retryable): invalid parameters or an access the activity is not entitled to (both
   *   checked locally first), or the subnet-api refused this request's data;
   * - `STORAGE_BAD_RESPONSE` (not retryable): the answer failed validation (bad URL, expired, wrong method …).
   */
  presign(params: PresignParams): Promise<PresignedUrl>;
  /** Closes the channel; later `presign` calls reject with STORAGE_UNAVAILABLE (not retryable). Idempotent. */
  close(): void;
}

export interface StorageBrokerOptions {
  /** gRPC target of the subnet-api, e.g. `127.0.0.1:50051` or `dns:///subnet-api.example:443`. */
  endpoint: string;
  /** Signs every request: the session the wallet delegated to (its address is the worker sent on the wire). */
  signer: PresignSigner;
  /** The chain id signed into every request. */
  chainId: number;
  /** Chain reads of the confinement checks. Without it a GET of another activity's namespace is refused. */
  chain?: EntitlementChain;
  logger: Logger;
  /** Deadline of each Presign call in ms (default 5000). */
  timeoutMs?: number;
  /** Channel credentials (default: insecure, for loopback and dev; `src/internal/grpc-tls.ts` builds TLS ones). */
  channelCredentials?: ChannelCredentials;
  /** Clock seam (Unix ms), for expiry checks. Default `Date.now`. */
  now?: () => number;
  /** How long a refusal resting on an activity missing on chain stays retryable (default `CHAIN_SETTLE_MS`). */
  chainSettleMs?: number;
}

/** A reorg settles within this (a few blocks on any chain wcp runs on); only then is a missing activity final. */
export const CHAIN_SETTLE_MS = 30_000;

const DEFAULT_TTL_S = 300;
/** Warn this long before the session delegation expires (it is renewed by restarting wcp). */
const SESSION_WARN_MS = 24 * 3_600_000;

/**
 * Creates the storage broker client. The channel connects lazily; a call made while the subnet-api is down
 * fails fast with STORAGE_UNAVAILABLE (no wait-for-ready), so the caller's retry policy decides.
 */
export function createStorageBroker(opts: StorageBrokerOptions): StorageBroker {
  const log = opts.logger.child('storage');
  const timeoutMs = opts.timeoutMs ?? 5000;
  const now = opts.now ?? Date.now;
  const Ctor = loadStorageBrokerService();
  const client: Client = new Ctor(opts.endpoint, opts.channelCredentials ?? credentials.createInsecure());
  const delegation = opts.signer.delegation;
  let closed = false;
  /** `acting/namespace` → when a refusal resting on a missing activity was first seen (see CHAIN_SETTLE_MS). */
  const unsettled = new Map<string, number>();
  let warnedExpiry = false;

  const call = (req: PresignRequestWire, signal: AbortSignal | undefined): Promise<PresignResponseWire> =>
    new Promise((resolve, reject) => {
      const c = (client as unknown as Record<string, (...args: unknown[]) => { cancel(): void }>).Presign!.call(
        client,
        req,
        { deadline: new Date(Date.now() + timeoutMs) },
        (err: ServiceError | null, res: PresignResponseWire) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(res);
        },
      ) as { cancel(): void };
      const onAbort = (): void => c.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  /** Throws STORAGE_REFUSED once the delegation expired; warns once when it nears its end. */
  const checkSession = (nowMs: number): void => {
    if (delegation === undefined) return;
    const left = delegation.expiresAtMs - nowMs;
    if (left <= 0) {
      throw storageRefused('session_expired', 'Storage session delegation expired: restart wcp to renew it', [
        `expired at ${new Date(delegation.expiresAtMs).toISOString()} (subnet_api.session_ttl)`,
      ]);
    }
    if (left < SESSION_WARN_MS && !warnedExpiry) {
      warnedExpiry = true;
      log.warn('Storage session delegation expires soon: restart wcp to renew it.', {
        expires_at: new Date(delegation.expiresAtMs).toISOString(),
      });
    }
  };

  /**
   * A refusal resting on an activity the chain does not know (refused locally or by the service, which reads the
   * chain itself): STORAGE_CHAIN_UNSETTLED while `chainSettleMs` has not passed since the first such refusal of
   * this access; after that it returns and the caller's STORAGE_DENIED is final.
   */
  const throwIfUnsettled = (key: string, message: string, acting: string, namespace: string): void => {
    const first = unsettled.get(key) ?? now();
    if (unsettled.size > 10_000) unsettled.clear();
    if (now() - first < (opts.chainSettleMs ?? CHAIN_SETTLE_MS)) {
      unsettled.set(key, first);
      throw new WcpError('STORAGE_CHAIN_UNSETTLED', `${message} (the chain may be mid-reorg)`, {
        retryable: true,
        details: [`acting_activity_id=${acting}`, `namespace=${namespace.slice(0, 80)}`],
      });
    }
    unsettled.delete(key);
  };

  /** The local confinement check; STORAGE_DENIED when not entitled, STORAGE_UNAVAILABLE when the chain failed. */
  const checkAccess = async (p: PresignParams, acting: string): Promise<void> => {
    const request = { acting, namespace: p.activityId, method: p.method };
    let why: string | null;
    if (opts.chain === undefined) {
      why =
        p.method === 'PUT' && p.activityId !== acting
          ? "PUT only in the acting activity's own namespace"
          : p.activityId !== acting
            ? 'no chain reads configured to check a cross-namespace GET'
            : null;
    } else {
      try {
        why = await decideAccess(opts.chain, request);
      } catch (e) {
        throw new WcpError('STORAGE_UNAVAILABLE', 'Could not read the chain to check storage access', {
          retryable: true,
          details: [e instanceof Error ? e.message : String(e)],
          cause: e,
        });
      }
    }
    const key = `${acting}/${p.activityId}`;
    // A pass here forgets nothing: the service may still refuse the same access (its window ends on a grant).
    if (why === null) return;
    if (isUnsettledRefusal(why)) throwIfUnsettled(key, `Not presigned yet: ${why}`, acting, p.activityId);
    throw new WcpError('STORAGE_DENIED', `Refused to presign: ${why}`, {
      retryable: false,
      details: [`acting_activity_id=${acting}`, `namespace=${p.activityId.slice(0, 80)}`, `key=${p.key.slice(0, 200)}`],
    });
  };

  return {
    async presign(p) {
      if (closed) throw new WcpError('STORAGE_UNAVAILABLE', 'Storage broker is closed', { retryable: false });
      // '' = an owner's direct request to its namespace (no activity held); the server checks the ownership.
      const acting = p.actingActivityId ?? p.activityId;
      const direct = acting === '';
      const problem =
        activityIdProblem(p.activityId) ??
        (direct ? null : activityIdProblem(acting)) ??
        objectKeyProblem(p.key) ??
        paramProblem(p);
      if (problem) {
        throw new WcpError('STORAGE_DENIED', `Refused to presign an invalid request: ${problem}`, {
          details: [`activity_id=${p.activityId.slice(0, 80)}`, `key=${p.key.slice(0, 200)}`],
        });
      }
      if (p.signal?.aborted) throw new WcpError('STORAGE_UNAVAILABLE', 'Presign cancelled', { retryable: true });
      const fields = { activity_id: acting, namespace: p.activityId, key: p.key, method: p.method };
      try {
        checkSession(now());
        if (!direct) await checkAccess(p, acting);
      } catch (e) {
        const err = e as WcpError;
        (p.probe ? log.debug : log.warn)('Presign refused locally.', { ...fields, code: err.code, error: err.message });
        throw e;
      }
      const ttlSeconds = p.ttlSeconds ?? DEFAULT_TTL_S;
      const contentType = p.contentType ?? '';
      const method = p.method === 'GET' ? 'METHOD_GET' : 'METHOD_PUT';
      const proof = opts.signer.sign(
        {
          chainId: opts.chainId,
          actingActivityId: acting,
          namespace: p.activityId,
          key: p.key,
          method: p.method,
          contentType,
          ttlSeconds,
        },
        now(),
      );
      const req: PresignRequestWire = {
        version: STORAGE_PROTOCOL_VERSION,
        worker_address: opts.signer.address,
        activity_id: p.activityId,
        key: p.key,
        method,
        content_type: contentType,
        ttl_seconds: ttlSeconds,
        acting_activity_id: acting,
        auth_expires_at_unix_ms: proof.expiresAtMs,
        auth_nonce: proof.nonce,
        signature: proof.signature,
        delegation: proof.delegation ? delegationToWire(proof.delegation) : null,
      };
      const started = Date.now();
      let res: PresignResponseWire;
      try {
        res = await call(req, p.signal);
      } catch (e) {
        let err = mapGrpcError(e, opts.endpoint);
        // The probe names an activity no chain holds on purpose: its refusal is the expected answer, never unsettled.
        if (!direct && !p.probe && isUnsettledDenial(e)) {
          try {
            throwIfUnsettled(
              `${acting}/${p.activityId}`,
              `${err.message}: ${err.details[0] ?? ''}`,
              acting,
              p.activityId,
            );
          } catch (u) {
            err = u as WcpError;
          }
        }
        (p.probe ? log.debug : log.warn)('Presign failed.', {
          ...fields,
          code: err.code,
          retryable: err.retryable,
          error: err.message,
        });
        throw err;
      }
      if (!direct) unsettled.delete(`${acting}/${p.activityId}`);
      const presigned = validateResponse(res, p.method, ttlSeconds, now());
      log.debug('Presigned a storage URL.', {
        ...fields,
        url: redactUrl(presigned.url),
        expires_in_ms: presigned.expiresAtMs - now(),
        duration_ms: Date.now() - started,
      });
      return presigned;
    },
    close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}
