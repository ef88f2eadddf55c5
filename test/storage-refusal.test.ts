/**
 * Refusals of the worker itself by a real storage service on loopback (the dev subnet-api, real grpc-js), no chain:
 * a session longer than the service accepts is refused with a stable reason (`session_ttl_too_long`) that wcp's
 * broker, its storage health and `wcp doctor`'s subnet-api check all name with the fix; `subnet_api.session_ttl`
 * above the protocol's limit is refused at start; the health probe's expected refusal is no warning.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { type DevSubnetApi, startDevSubnetApi } from '../scripts/lib/subnet-api/index.ts';
import { subnetApiCheck } from '../src/doctor/link-checks.ts';
import { createBridgeEvents } from '../src/executor/events.ts';
import type { ExecutorEvent } from '../src/executor/messages.ts';
import { createStorageHealth } from '../src/executor/storage-health.ts';
import { errorText, isWcpError, type WcpError } from '../src/internal/errors.ts';
import { createLogger } from '../src/internal/logger.ts';
import { createPresignSigner, createStorageSession } from '../src/storage/auth.ts';
import { createStorageBroker } from '../src/storage/broker.ts';
import { classifyStorageFailure } from '../src/storage/refusal.ts';

const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const HOUR = 3_600_000;
const quiet = createLogger('test', { level: 'error', write: () => {} });

let dir: string;
let api: DevSubnetApi;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-storage-refusal-'));
  // One hour at most; namespace '0' (the probe's) is nobody's: PERMISSION_DENIED, the probe's expected answer.
  api = await startDevSubnetApi({
    dataDir: dir,
    maxSessionTtlS: 3600,
    authorize: ({ activityId }) => activityId !== '0',
    logger: quiet,
  });
}, 30_000);

afterAll(async () => {
  await api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function brokerWith(ttlMs: number, logger = quiet) {
  const session = createStorageSession({ walletKey: KEY, chainId: 31337, ttlMs });
  return createStorageBroker({
    endpoint: api.grpcEndpoint,
    signer: createPresignSigner(session),
    chainId: 31337,
    logger,
    timeoutMs: 3000,
  });
}

async function refusal(p: Promise<unknown>): Promise<WcpError> {
  try {
    await p;
  } catch (e) {
    if (isWcpError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

function configWith(env: Record<string, string>) {
  const path = join(dir, 'empty.toml');
  writeFileSync(path, '');
  return loadConfig({ path, env: { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, ...env } });
}

describe('a storage session longer than the service accepts', () => {
  test('is refused as STORAGE_REFUSED session_ttl_too_long, about the worker; a shorter one is served', async () => {
    const long = brokerWith(2 * HOUR);
    try {
      const e = await refusal(long.presign({ activityId: 'act-1', key: 'a.txt', method: 'GET' }));
      expect(e.code).toBe('STORAGE_REFUSED');
      expect(classifyStorageFailure(e)).toEqual({ kind: 'worker', reason: 'session_ttl_too_long' });
      expect(errorText(e)).toContain('UNAUTHENTICATED');
    } finally {
      long.close();
    }
    const ok = brokerWith(HOUR / 2);
    try {
      expect((await ok.presign({ activityId: 'act-1', key: 'a.txt', method: 'GET' })).url).toContain('/blobs/act-1/');
    } finally {
      ok.close();
    }
  });

  test('the storage health reports it refused, with the reason', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('t', { level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l)) });
    const sent: ExecutorEvent[] = [];
    const health = createStorageHealth({ events: createBridgeEvents((m) => sent.push(m), logger), logger });
    const b = brokerWith(2 * HOUR, logger);
    health.watch(b);
    health.start();
    try {
      for (let i = 0; i < 500 && health.state() === undefined; i++) await Bun.sleep(10);
      expect(health.state()).toBe('refused');
      expect(sent).toEqual([
        expect.objectContaining({ type: 'storage', available: false, refused: 'session_ttl_too_long' }),
      ]);
      // The probe's own failure is at debug; the change of state is the one warning.
      expect(
        lines.filter((l) => l.level === 'warn' && !String(l.msg).includes('expires soon')).map((l) => l.msg),
      ).toEqual(['Storage service refuses this worker.']);
    } finally {
      health.stop();
      b.close();
    }
  });

  test("the probe's expected refusal (PERMISSION_DENIED) is up and logs no warning", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('t', { level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l)) });
    const health = createStorageHealth({ events: createBridgeEvents(() => {}, logger), logger });
    const b = brokerWith(HOUR / 2, logger);
    health.watch(b);
    health.start();
    try {
      for (let i = 0; i < 500 && health.state() === undefined; i++) await Bun.sleep(10);
      expect(health.state()).toBe('up');
      expect(lines.some((l) => l.msg === 'Presign failed.' && l.level === 'debug')).toBe(true);
      // (A session this short is warned about as expiring soon: that warning is not the probe's.)
      expect(lines.filter((l) => l.level !== 'debug' && !String(l.msg).includes('expires soon'))).toEqual([]);
    } finally {
      health.stop();
      b.close();
    }
  });

  test('wcp doctor: the subnet-api check fails naming subnet_api.session_ttl; passes with a short session', async () => {
    const base = { WCP__SUBNET_API__GRPC_ENDPOINT: api.grpcEndpoint };
    const bad = await subnetApiCheck(configWith({ ...base, WCP__SUBNET_API__SESSION_TTL: '2h' }));
    expect(bad).toMatchObject({ name: 'subnet-api', status: 'fail' });
    expect(bad.detail).toContain('[session_ttl_too_long]');
    expect(bad.fix).toContain('lower subnet_api.session_ttl');
    const good = await subnetApiCheck(configWith({ ...base, WCP__SUBNET_API__SESSION_TTL: '30m' }));
    expect(good).toMatchObject({ name: 'subnet-api', status: 'pass' });
  });

  test('subnet_api.session_ttl above the protocol limit (744h) is refused at start, naming the field', () => {
    let text = '';
    try {
      configWith({ WCP__SUBNET_API__SESSION_TTL: '800h' });
    } catch (e) {
      text = isWcpError(e) ? [e.message, ...e.details].join('\n') : String(e);
    }
    expect(text).toContain('subnet_api.session_ttl');
    expect(text).toContain('at most 744h');
    expect(configWith({ WCP__SUBNET_API__SESSION_TTL: '744h' }).subnetApi.sessionTtlMs).toBe(744 * HOUR);
  });
});
