/**
 * gRPC side of the dev subnet-api: the `wcp.storage.v1.StorageBroker` service, issuing URLs for the blob store
 * signed with the server's secret. Validates like the real subnet-api is expected to: protocol version, worker
 * address, activity id, key, method; an optional `authorize` hook plays the "is this worker assigned to this
 * activity" check.
 */
import { type ServerUnaryCall, type sendUnaryData, status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../../internal/logger.ts';
import {
  STORAGE_PROTOCOL_VERSION,
  activityIdProblem,
  objectKeyProblem,
  type PresignMethod,
  type PresignRequestWire,
  type PresignResponseWire,
  workerAddressProblem,
} from '../../storage/broker.ts';
import { buildBlobUrl } from './signing.ts';

/** What `authorize` sees; return false to refuse with PERMISSION_DENIED. */
export interface PresignAuthRequest {
  workerAddress: string;
  activityId: string;
  key: string;
  method: PresignMethod;
}

export interface BrokerServiceOptions {
  httpBase: () => string;
  secret: string;
  defaultTtlS: number;
  maxTtlS: number;
  maxPutBytes: number;
  now: () => number;
  authorize: (req: PresignAuthRequest) => boolean;
  logger: Logger;
}

/** Returns the StorageBroker implementation to pass to `server.addService`. */
export function createBrokerService(opts: BrokerServiceOptions): UntypedServiceImplementation {
  const fail = (cb: sendUnaryData<PresignResponseWire>, code: status, details: string): void => {
    opts.logger.debug('Refused a presign request.', { code: status[code], reason: details });
    cb({ code, details, name: 'Error', message: details, metadata: undefined as never });
  };
  return {
    Presign(call: ServerUnaryCall<PresignRequestWire, PresignResponseWire>, cb: sendUnaryData<PresignResponseWire>) {
      const r = call.request;
      if (r.version !== STORAGE_PROTOCOL_VERSION) {
        return fail(
          cb,
          status.FAILED_PRECONDITION,
          `protocol version ${r.version} not supported; this server speaks ${STORAGE_PROTOCOL_VERSION}`,
        );
      }
      const problem =
        workerAddressProblem(r.worker_address) ?? activityIdProblem(r.activity_id) ?? objectKeyProblem(r.key);
      if (problem) return fail(cb, status.INVALID_ARGUMENT, problem);
      if (r.method !== 'METHOD_GET' && r.method !== 'METHOD_PUT')
        return fail(cb, status.INVALID_ARGUMENT, 'method must be METHOD_GET or METHOD_PUT');
      const method: PresignMethod = r.method === 'METHOD_GET' ? 'GET' : 'PUT';
      if (!opts.authorize({ workerAddress: r.worker_address, activityId: r.activity_id, key: r.key, method })) {
        return fail(
          cb,
          status.PERMISSION_DENIED,
          `worker ${r.worker_address} may not ${method} objects of activity ${r.activity_id}`,
        );
      }
      const ttlS = Math.min(r.ttl_seconds > 0 ? r.ttl_seconds : opts.defaultTtlS, opts.maxTtlS);
      const expMs = opts.now() + ttlS * 1000;
      const headers: Record<string, string> = {};
      if (method === 'PUT' && r.content_type) headers['content-type'] = r.content_type;
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
  };
}
