import { describe, expect, test } from 'bun:test';
import { status } from '@grpc/grpc-js';
import { WcpError } from '../internal/errors.ts';
import { createLogger } from '../internal/logger.ts';
import { mapGrpcError } from '../storage/wire.ts';
import { createBridgeEvents } from './events.ts';
import type { ExecutorEvent } from './messages.ts';
import type { StorageBrokerLike } from './storage.ts';
import { createStorageHealth, stateOf } from './storage-health.ts';
import { untilTrue } from '../internal/testing/until.ts';

const grpc = (code: status, details: string) => mapGrpcError({ code, details }, '127.0.0.1:1');

/** A fake broker (the real one is exercised in test/storage-refusal.test.ts): each call takes `answer()`. */
function fakeBroker(answer: () => unknown) {
  const calls: Array<{ probe?: boolean }> = [];
  const broker: StorageBrokerLike = {
    async presign(p) {
      calls.push(p);
      const a = answer();
      if (a !== undefined) throw a;
      return { url: 'http://x/y?sig', method: 'GET', expiresAtMs: Date.now() + 60_000, headers: {} };
    },
    close() {},
  };
  return { broker, calls };
}

function harness(answer: () => unknown) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('t', { level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l)) });
  const sent: ExecutorEvent[] = [];
  const health = createStorageHealth({
    events: createBridgeEvents((m) => sent.push(m), logger),
    logger,
    probeBaseMs: 10,
    probeMaxMs: 20,
    random: () => 0.5,
  });
  const { broker, calls } = fakeBroker(answer);
  const watched = health.watch(broker);
  const storageEvents = () => sent.filter((e) => e.type === 'storage');
  return { health, watched, calls, lines, storageEvents };
}

describe('storage health', () => {
  test('stateOf: a URL or a refusal of the data is up; unreachable is down; a refusal of the worker is refused', () => {
    expect(stateOf(undefined)).toEqual({ state: 'up' });
    expect(stateOf(grpc(status.PERMISSION_DENIED, 'activity 0 does not exist on chain'))).toEqual({ state: 'up' });
    expect(stateOf(grpc(status.UNAVAILABLE, 'ECONNREFUSED'))).toEqual({ state: 'down' });
    expect(stateOf(new Error('no code'))).toEqual({ state: 'down' });
    // A local refusal while the chain may be mid-reorg never asked the service: no evidence either way.
    expect(stateOf(new WcpError('STORAGE_CHAIN_UNSETTLED', 'activity 9 does not exist on chain'))).toBeUndefined();
    expect(stateOf(grpc(status.UNIMPLEMENTED, 'unknown service'))).toEqual({
      state: 'refused',
      reason: 'not_storage_service',
    });
    expect(stateOf(grpc(status.UNAUTHENTICATED, 'delegation_too_long: x'))).toEqual({
      state: 'refused',
      reason: 'session_ttl_too_long',
    });
  });

  test("the probe's expected PERMISSION_DENIED is up, logged at no level above debug", async () => {
    const h = harness(() => grpc(status.PERMISSION_DENIED, 'activity 0 does not exist on chain'));
    h.health.start();
    await untilTrue(() => h.health.state() === 'up');
    expect(h.calls[0]?.probe).toBe(true);
    expect(h.storageEvents()).toEqual([{ type: 'storage', available: true }]);
    expect(h.lines.filter((l) => l.level !== 'debug')).toEqual([]);
    h.health.stop();
  });

  test('a service refusing the worker is refused (with the reason), probed, and up again once it answers', async () => {
    let answer: unknown = grpc(status.UNIMPLEMENTED, 'unknown service wcp.storage.v1.StorageBroker');
    const h = harness(() => answer);
    h.health.start();
    await untilTrue(() => h.health.state() === 'refused');
    expect(h.health.refusal()).toBe('not_storage_service');
    expect(h.storageEvents()[0]).toMatchObject({ type: 'storage', available: false, refused: 'not_storage_service' });
    // Probed again while refused; each probe is the same refusal: one event only.
    await untilTrue(() => h.calls.length >= 3);
    expect(h.storageEvents().length).toBe(1);
    // The session refused instead: a new reason is a new event.
    answer = grpc(status.UNAUTHENTICATED, 'delegation_too_long: delegation lives longer than this server accepts');
    await untilTrue(() => h.health.refusal() === 'session_ttl_too_long');
    // A regular presign refused for its data says the service is fine with the worker.
    answer = new WcpError('STORAGE_DENIED', 'namespace seed is owned by another address');
    await untilTrue(() => h.health.state() === 'up');
    expect(h.storageEvents().map((e) => (e.type === 'storage' ? (e.refused ?? e.available) : ''))).toEqual([
      'not_storage_service',
      'session_ttl_too_long',
      true,
    ]);
    const calls = h.calls.length;
    await Bun.sleep(60);
    expect(h.calls.length).toBe(calls); // no probing while up
    h.health.stop();
  });
});
