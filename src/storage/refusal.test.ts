import { describe, expect, test } from 'bun:test';
import { status } from '@grpc/grpc-js';
import { toWire, WcpError } from '../internal/errors.ts';
import {
  classifyStorageFailure,
  describeRefusal,
  STORAGE_REFUSAL_REASONS,
  storageRefused,
  workerRefusalOfGrpc,
} from './refusal.ts';
import { mapGrpcError } from './wire.ts';

const grpcError = (code: status, details: string) => ({ code, details, message: `${code} ${details}` });

describe('storage refusal classification', () => {
  test('gRPC statuses about the worker have a stable reason; those about the data have none', () => {
    expect(workerRefusalOfGrpc(status.UNIMPLEMENTED, 'The server does not implement the method')).toBe(
      'not_storage_service',
    );
    expect(workerRefusalOfGrpc(status.UNAUTHENTICATED, 'delegation_too_long: delegation lives longer')).toBe(
      'session_ttl_too_long',
    );
    expect(workerRefusalOfGrpc(status.UNAUTHENTICATED, 'delegation_expired: session delegation expired')).toBe(
      'session_expired',
    );
    expect(workerRefusalOfGrpc(status.UNAUTHENTICATED, 'bad_signature: nope')).toBe('session_refused');
    expect(workerRefusalOfGrpc(status.UNAUTHENTICATED, 'no reason code here')).toBe('session_refused');
    expect(workerRefusalOfGrpc(status.FAILED_PRECONDITION, 'protocol version 2 not supported')).toBe(
      'protocol_mismatch',
    );
    for (const c of [status.PERMISSION_DENIED, status.INVALID_ARGUMENT, status.NOT_FOUND, status.FAILED_PRECONDITION])
      expect(workerRefusalOfGrpc(c, 'namespace seed is owned by another address')).toBeNull();
  });

  test('mapGrpcError: unreachable, refused (with its reason, surviving the thread boundary) or denied', () => {
    const cases: Array<[status, string, string]> = [
      [status.UNAVAILABLE, 'connect ECONNREFUSED', 'unreachable'],
      [status.DEADLINE_EXCEEDED, 'deadline', 'unreachable'],
      [status.UNIMPLEMENTED, 'unknown service wcp.storage.v1.StorageBroker', 'worker:not_storage_service'],
      [status.UNAUTHENTICATED, 'delegation_too_long: too long', 'worker:session_ttl_too_long'],
      [status.UNAUTHENTICATED, 'replayed: this nonce was already used', 'worker:session_refused'],
      [status.PERMISSION_DENIED, 'activity 0 does not exist on chain', 'activity'],
      [status.INVALID_ARGUMENT, 'key is empty', 'activity'],
    ];
    for (const [code, details, want] of cases) {
      const e = mapGrpcError(grpcError(code, details), '127.0.0.1:1');
      const f = classifyStorageFailure(e);
      const got = f.kind === 'worker' ? `worker:${f.reason}` : f.kind;
      expect(`${status[code]} → ${got}`).toBe(`${status[code]} → ${want}`);
      // The same verdict from the wire form (what crosses threads).
      expect(classifyStorageFailure(toWire(e))).toEqual(f);
      if (f.kind === 'worker') expect(e.code).toBe('STORAGE_REFUSED');
    }
  });

  test('other failures: an unusable answer is about the service; anything without a code is unreachable', () => {
    expect(classifyStorageFailure(new WcpError('STORAGE_BAD_RESPONSE', 'bad url'))).toEqual({
      kind: 'worker',
      reason: 'bad_answer',
    });
    expect(classifyStorageFailure(new WcpError('STORAGE_DENIED', 'PUT only in its namespace'))).toEqual({
      kind: 'activity',
    });
    expect(classifyStorageFailure(new Error('boom'))).toEqual({ kind: 'unreachable' });
    expect(classifyStorageFailure(undefined)).toEqual({ kind: 'unreachable' });
    expect(classifyStorageFailure(storageRefused('session_expired', 'expired'))).toEqual({
      kind: 'worker',
      reason: 'session_expired',
    });
    // A refusal whose reason line is missing or unknown is still about the worker.
    expect(classifyStorageFailure({ code: 'STORAGE_REFUSED', details: ['refusal=whatever'] })).toEqual({
      kind: 'worker',
      reason: 'session_refused',
    });
  });

  test('every reason names a cause and a fix', () => {
    for (const r of STORAGE_REFUSAL_REASONS) {
      const d = describeRefusal(r, 'h:1');
      expect(d.cause.length).toBeGreaterThan(10);
      expect(d.fix.length).toBeGreaterThan(10);
    }
    expect(describeRefusal('not_storage_service', 'h:1').fix).toContain('subnet_api.grpc_endpoint');
    expect(describeRefusal('session_ttl_too_long', 'h:1').fix).toContain('subnet_api.session_ttl');
  });
});
