/**
 * gRPC side of the dev subnet-api: the `wcp.storage.v1.StorageBroker` service, issuing URLs for the blob store
 * signed with the server's secret. It checks what the real subnet-api is expected to, in this order:
 * 1. the wire: protocol version, worker address, namespace (`activity_id`), acting activity, key, method;
 * 2. who asks (src/storage/auth.ts): the request signature by the delegated session key (or by worker_address
 *    itself), the wallet's delegation (this chain, live, no longer than `maxSessionTtlMs`), the request's expiry
 *    and a fresh nonce → UNAUTHENTICATED, its details starting with the verifier's reason code
 *    (`delegation_too_long: …`), which wcp reads (src/storage/refusal.ts);
 * 3. what they may touch (src/storage/entitlement.ts) → PERMISSION_DENIED:
 *    - an owner's direct request (no acting activity) to a non-activity namespace: GET only by its owner, PUT by
 *      its owner or, for a namespace nobody owns yet, by anyone (who becomes its owner);
 *    - with `chain`: the acting activity is Claimed by the worker and not expired; PUT only in its namespace; GET
 *      in its namespace, an earlier step's of the same workflow, or a namespace owned by the workflow's owner;
 *    - without `chain` (unit tests, quick manual runs): the `authorize` hook decides.
 * A chain read that fails answers UNAVAILABLE (the client retries).
 */
import { type ServerUnaryCall, type sendUnaryData, status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../../../src/internal/logger.ts';
import { createNonceGuard, verifyPresignAuth } from '../../../src/storage/auth.ts';
import { decideAccess, type EntitlementChain, isActivityNamespace } from '../../../src/storage/entitlement.ts';
import {
  activityIdProblem,
  delegationFromWire,
  objectKeyProblem,
  type PresignMethod,
  type PresignRequestWire,
  type PresignResponseWire,
  STORAGE_PROTOCOL_VERSION,
  workerAddressProblem,
} from '../../../src/storage/wire.ts';
import type { NamespaceOwners } from './owners.ts';
import { buildBlobUrl } from './signing.ts';

/** What `authorize` sees (without `chain`); return false to refuse with PERMISSION_DENIED. */
export interface PresignAuthRequest {
  workerAddress: string;
  /** The namespace. */
  activityId: string;
  actingActivityId: string;
  key: string;
  method: PresignMethod;
}

/** One decision of the service, kept for tests and the dev console. */
export interface PresignRecord {
  worker: string;
  acting: string;
  namespace: string;
  key: string;
  method: PresignMethod;
  /** 'granted', or the gRPC status name of the refusal. */
  outcome: string;
  reason?: string;
}

export interface BrokerServiceOptions {
  httpBase: () => string;
  secret: string;
  defaultTtlS: number;
  maxTtlS: number;
  maxPutBytes: number;
  now: () => number;
  /** The chain id signed requests and delegations must name. */
  chainId: number;
  /** Longest session delegation accepted, ms. */
  maxSessionTtlMs: number;
  /** On-chain holder and entitlement checks; without it `authorize` decides. */
  chain: EntitlementChain | undefined;
  authorize: (req: PresignAuthRequest) => boolean;
  owners: NamespaceOwners;
  record: (r: PresignRecord) => void;
  logger: Logger;
}

class Refusal extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** Returns the StorageBroker implementation to pass to `server.addService`. */
export function createBrokerService(opts: BrokerServiceOptions): UntypedServiceImplementation {
  const nonces = createNonceGuard();

  /** Checks the request; resolves with the method granted or rejects with a Refusal. */
  async function check(r: PresignRequestWire): Promise<PresignMethod> {
    if (r.version !== STORAGE_PROTOCOL_VERSION) {
      throw new Refusal(
        status.FAILED_PRECONDITION,
        `protocol version ${r.version} not supported; this server speaks ${STORAGE_PROTOCOL_VERSION}`,
      );
    }
    const problem =
      workerAddressProblem(r.worker_address) ??
      activityIdProblem(r.activity_id) ??
      (r.acting_activity_id ? activityIdProblem(r.acting_activity_id) : null) ??
      objectKeyProblem(r.key);
    if (problem) throw new Refusal(status.INVALID_ARGUMENT, problem);
    if (r.method !== 'METHOD_GET' && r.method !== 'METHOD_PUT')
      throw new Refusal(status.INVALID_ARGUMENT, 'method must be METHOD_GET or METHOD_PUT');
    const method: PresignMethod = r.method === 'METHOD_GET' ? 'GET' : 'PUT';

    const nowMs = opts.now();
    const verdict = verifyPresignAuth(
      {
        address: r.worker_address,
        actingActivityId: r.acting_activity_id,
        namespace: r.activity_id,
        key: r.key,
        method,
        contentType: r.content_type,
        ttlSeconds: r.ttl_seconds,
      },
      {
        signature: r.signature,
        nonce: r.auth_nonce,
        expiresAtMs: Number(r.auth_expires_at_unix_ms ?? 0),
        ...(r.delegation ? { delegation: delegationFromWire(r.delegation) } : {}),
      },
      { chainId: opts.chainId, nowMs, maxDelegationTtlMs: opts.maxSessionTtlMs },
    );
    if (!verdict.ok) throw new Refusal(status.UNAUTHENTICATED, `${verdict.reason}: ${verdict.message}`);
    if (!nonces.fresh(r.auth_nonce, Number(r.auth_expires_at_unix_ms), nowMs))
      throw new Refusal(status.UNAUTHENTICATED, 'replayed: this nonce was already used');
    const who = verdict.address;
    const ns = r.activity_id;

    // An owner's direct request to a non-activity namespace (e.g. seeding `seed`).
    if (r.acting_activity_id === '' && !isActivityNamespace(ns)) {
      const owner = opts.owners.get(ns);
      if (method === 'PUT' && (owner === undefined || owner === who)) {
        opts.owners.claim(ns, who);
        return method;
      }
      if (method === 'GET' && owner === who) return method;
      throw new Refusal(status.PERMISSION_DENIED, `namespace ${ns} is owned by another address`);
    }
    const acting = r.acting_activity_id || ns;
    if (opts.chain === undefined) {
      const ok = opts.authorize({ workerAddress: who, activityId: ns, actingActivityId: acting, key: r.key, method });
      if (!ok) throw new Refusal(status.PERMISSION_DENIED, `worker ${who} may not ${method} objects of ${ns}`);
      return method;
    }
    let why: string | null;
    try {
      why = await decideAccess(
        opts.chain,
        { acting, namespace: ns, method },
        { holder: who, namespaceOwner: (n) => opts.owners.get(n) },
      );
    } catch (e) {
      throw new Refusal(status.UNAVAILABLE, `chain read failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (why !== null) throw new Refusal(status.PERMISSION_DENIED, why);
    return method;
  }

  return {
    Presign(call: ServerUnaryCall<PresignRequestWire, PresignResponseWire>, cb: sendUnaryData<PresignResponseWire>) {
      const r = call.request;
      const base = {
        worker: String(r.worker_address).toLowerCase(),
        acting: r.acting_activity_id,
        namespace: r.activity_id,
        key: r.key,
        method: (r.method === 'METHOD_PUT' ? 'PUT' : 'GET') as PresignMethod,
      };
      check(r).then(
        (method) => {
          const ttlS = Math.min(r.ttl_seconds > 0 ? r.ttl_seconds : opts.defaultTtlS, opts.maxTtlS);
          const expMs = opts.now() + ttlS * 1000;
          const headers: Record<string, string> = {};
          if (method === 'PUT' && r.content_type) headers['content-type'] = r.content_type;
          opts.record({ ...base, outcome: 'granted' });
          opts.logger.debug('Presigned.', { activity_id: r.activity_id, key: r.key, method, ttl_s: ttlS });
          cb(null, {
            version: STORAGE_PROTOCOL_VERSION,
            url: buildBlobUrl(opts.httpBase(), opts.secret, method, r.activity_id, r.key, expMs),
            method: r.method,
            expires_at_unix_ms: expMs,
            headers,
            max_bytes: method === 'PUT' ? opts.maxPutBytes : 0,
          });
        },
        (e: unknown) => {
          const code = e instanceof Refusal ? e.code : status.INTERNAL;
          const details = e instanceof Error ? e.message : String(e);
          opts.record({ ...base, outcome: status[code] ?? String(code), reason: details });
          opts.logger.debug('Refused a presign request.', { code: status[code], reason: details });
          cb({ code, details, name: 'Error', message: details, metadata: undefined as never });
        },
      );
    },
  };
}
