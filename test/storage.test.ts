/**
 * Storage brokering end to end on loopback: the dev subnet-api (real grpc-js + real node:http + real files in a
 * temp dir) and wcp's broker client. Also a hostile StorageBroker (a real grpc-js server answering bad URLs) to
 * check the client's validation of untrusted responses.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import { isWcpError, type WcpError } from '../src/internal/errors.ts';
import { createLogger } from '../src/internal/logger.ts';
import { type DevSubnetApi, startDevSubnetApi } from '../scripts/lib/subnet-api/index.ts';
import { createPresignSigner, createStorageSession } from '../src/storage/auth.ts';
import {
  createStorageBroker,
  loadStorageBrokerService,
  type PresignResponseWire,
  type StorageBroker,
} from '../src/storage/broker.ts';

const WORKER = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const WORKER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
/** The broker signs with a session the worker's wallet delegated to (anvil's chain id). */
const AUTH = {
  signer: createPresignSigner(createStorageSession({ walletKey: WORKER_KEY, chainId: 31337, ttlMs: 3_600_000 })),
  chainId: 31337,
};
const quiet = createLogger('test', { level: 'error', write: () => {} });
const MAX_PUT = 1024 * 1024;

let dataDir: string;
let api: DevSubnetApi;
let broker: StorageBroker;
/** Server clock offset; tests move it forward to expire URLs without sleeping. */
let skewMs = 0;

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends a request with the target exactly as given (fetch and URL would normalize `..` away). */
async function rawRequest(
  base: string,
  method: string,
  target: string,
  body = '',
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return await new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname);
    let data = '';
    sock.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    sock.on('error', reject);
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      const split = data.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, body: split >= 0 ? data.slice(split + 4) : '' });
    });
    sock.write(
      `${method} ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
  });
}

async function expectWcpError(p: Promise<unknown>): Promise<WcpError> {
  try {
    await p;
  } catch (e) {
    if (isWcpError(e)) return e;
    throw e;
  }
  throw new Error('expected a WcpError, got success');
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'wcp-storage-'));
  api = await startDevSubnetApi({
    dataDir,
    maxTtlS: 900,
    maxPutBytes: MAX_PUT,
    now: () => Date.now() + skewMs,
    authorize: ({ activityId }) => activityId !== 'forbidden-activity',
    logger: quiet,
  });
  broker = createStorageBroker({ endpoint: api.grpcEndpoint, ...AUTH, logger: quiet, timeoutMs: 3000 });
}, 120_000);

afterAll(async () => {
  broker?.close();
  await api?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('dev subnet-api + broker', () => {
  test('presign PUT, upload, presign GET, download equals', async () => {
    const bytes = randomBytes(256 * 1024);
    const put = await broker.presign({
      activityId: 'act-1',
      key: 'outputs/video.mp4',
      method: 'PUT',
      contentType: 'video/mp4',
    });
    expect(put.method).toBe('PUT');
    expect(put.url.startsWith(`${api.httpBase}/blobs/act-1/outputs/video.mp4?`)).toBe(true);
    expect(put.headers).toEqual({ 'content-type': 'video/mp4' });
    expect(put.maxBytes).toBe(MAX_PUT);
    expect(put.expiresAtMs).toBeGreaterThan(Date.now());

    const up = await fetch(put.url, { method: 'PUT', headers: put.headers, body: bytes });
    expect(up.status).toBe(201);
    expect(readFileSync(api.blobPath('act-1', 'outputs/video.mp4')).equals(bytes)).toBe(true);

    const get = await broker.presign({ activityId: 'act-1', key: 'outputs/video.mp4', method: 'GET' });
    const down = await fetch(get.url);
    expect(down.status).toBe(200);
    expect(down.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await down.arrayBuffer()).equals(bytes)).toBe(true);
  });

  test('putBlob seeds an input that a GET URL then serves', async () => {
    await api.putBlob('act-seed', 'inputs/source.mp4', 'seeded bytes');
    const get = await broker.presign({ activityId: 'act-seed', key: 'inputs/source.mp4', method: 'GET' });
    expect(await (await fetch(get.url)).text()).toBe('seeded bytes');
  });

  test('GET of a missing object is 404', async () => {
    const get = await broker.presign({ activityId: 'act-1', key: 'nope.bin', method: 'GET' });
    expect((await fetch(get.url)).status).toBe(404);
  });

  test('bad, missing and tampered signatures are refused with 403', async () => {
    await api.putBlob('act-sig', 'a.txt', 'secret');
    const get = await broker.presign({ activityId: 'act-sig', key: 'a.txt', method: 'GET' });
    const u = new URL(get.url);
    const sig = u.searchParams.get('sig') ?? '';
    const flipped = new URL(get.url);
    flipped.searchParams.set('sig', `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`);
    expect((await fetch(flipped)).status).toBe(403);

    const unsigned = new URL(get.url);
    unsigned.searchParams.delete('sig');
    const r = await fetch(unsigned);
    expect(r.status).toBe(403);
    expect(await r.text()).toContain('not signed');

    // Extending the expiry invalidates the signature.
    const longer = new URL(get.url);
    longer.searchParams.set('exp', String(Number(u.searchParams.get('exp')) + 3_600_000));
    expect((await fetch(longer)).status).toBe(403);

    // A URL signed with another secret (another server) is refused.
    const otherDir = mkdtempSync(join(tmpdir(), 'wcp-storage-other-'));
    const other = await startDevSubnetApi({ dataDir: otherDir, logger: quiet });
    try {
      const otherBroker = createStorageBroker({ endpoint: other.grpcEndpoint, ...AUTH, logger: quiet });
      const foreign = await otherBroker.presign({ activityId: 'act-sig', key: 'a.txt', method: 'GET' });
      otherBroker.close();
      const replayed = foreign.url.replace(other.httpBase, api.httpBase);
      expect((await fetch(replayed)).status).toBe(403);
    } finally {
      await other.stop();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  test('an expired URL is refused with 403 and a clear body', async () => {
    await api.putBlob('act-exp', 'a.txt', 'x');
    const get = await broker.presign({ activityId: 'act-exp', key: 'a.txt', method: 'GET', ttlSeconds: 60 });
    expect((await fetch(get.url)).status).toBe(200);
    skewMs = 61_000;
    try {
      const r = await fetch(get.url);
      expect(r.status).toBe(403);
      expect(await r.text()).toContain('URL expired at');
    } finally {
      skewMs = 0;
    }
  });

  test('the server caps the TTL', async () => {
    const get = await broker.presign({ activityId: 'act-1', key: 'x', method: 'GET', ttlSeconds: 3600 });
    expect(get.expiresAtMs).toBeLessThanOrEqual(Date.now() + 900_000);
    expect(get.expiresAtMs).toBeGreaterThan(Date.now() + 890_000);
  });

  test('path traversal in the URL is refused with 400', async () => {
    await api.putBlob('act-victim', 'secret.txt', 'do not read');
    const get = await broker.presign({ activityId: 'act-att', key: 'x.txt', method: 'GET' });
    const query = get.url.slice(get.url.indexOf('?'));
    for (const target of [
      `/blobs/act-att/../act-victim/secret.txt${query}`,
      `/blobs/act-att/%2e%2e/act-victim/secret.txt${query}`,
      `/blobs/act-att/..%2Fact-victim%2Fsecret.txt${query}`,
      `/blobs/act-att/x/..${query}`,
      `/blobs/act-att//x.txt${query}`,
      `/blobs/..${query}`,
    ]) {
      const r = await rawRequest(api.httpBase, 'GET', target);
      expect({ target, status: r.status }).toEqual({ target, status: 400 });
      expect(r.body).not.toContain('do not read');
    }
    const put = await broker.presign({ activityId: 'act-att', key: 'x.txt', method: 'PUT' });
    const putQuery = put.url.slice(put.url.indexOf('?'));
    const w = await rawRequest(
      api.httpBase,
      'PUT',
      `/blobs/act-att/../act-victim/secret.txt${putQuery}`,
      'overwritten',
    );
    expect(w.status).toBe(400);
    expect(readFileSync(api.blobPath('act-victim', 'secret.txt'), 'utf8')).toBe('do not read');
  });

  test('invalid keys are refused by the broker locally and by the server', async () => {
    for (const key of ['../x', '/abs', 'a//b', 'a/./b', 'sp ace', '']) {
      const e = await expectWcpError(broker.presign({ activityId: 'act-1', key, method: 'GET' }));
      expect(e.code).toBe('STORAGE_DENIED');
      expect(e.retryable).toBe(false);
    }
    // Straight to the server, bypassing the client's checks.
    const Ctor = loadStorageBrokerService();
    const raw = new Ctor(api.grpcEndpoint, credentials.createInsecure());
    const rawPresign = (req: Record<string, unknown>) =>
      new Promise<{ err: ServiceError | null; res?: PresignResponseWire }>((resolve) => {
        (raw as unknown as Record<string, (...args: unknown[]) => void>).Presign!.call(
          raw,
          req,
          (err: ServiceError | null, res: PresignResponseWire) => resolve({ err, res }),
        );
      });
    const base = { version: 1, worker_address: WORKER, activity_id: 'act-1', key: 'ok.txt', method: 'METHOD_GET' };
    expect((await rawPresign({ ...base, key: '../act-2/x' })).err?.code).toBe(status.INVALID_ARGUMENT);
    expect((await rawPresign({ ...base, activity_id: '..' })).err?.code).toBe(status.INVALID_ARGUMENT);
    expect((await rawPresign({ ...base, worker_address: 'nope' })).err?.code).toBe(status.INVALID_ARGUMENT);
    expect((await rawPresign({ ...base, method: 'METHOD_UNSPECIFIED' })).err?.code).toBe(status.INVALID_ARGUMENT);
    expect((await rawPresign({ ...base, version: 2 })).err?.code).toBe(status.FAILED_PRECONDITION);
    // Well-formed but unsigned: refused before any access rule.
    expect((await rawPresign(base)).err?.code).toBe(status.UNAUTHENTICATED);
    raw.close();
  });

  test('a URL for activity A never reads or writes activity B', async () => {
    await api.putBlob('act-b', 'data.bin', 'B data');
    const getA = await broker.presign({ activityId: 'act-a', key: 'data.bin', method: 'GET' });
    expect((await fetch(getA.url.replace('/blobs/act-a/', '/blobs/act-b/'))).status).toBe(403);

    const putA = await broker.presign({ activityId: 'act-a', key: 'data.bin', method: 'PUT' });
    const r = await fetch(putA.url.replace('/blobs/act-a/', '/blobs/act-b/'), { method: 'PUT', body: 'overwritten' });
    expect(r.status).toBe(403);
    expect(readFileSync(api.blobPath('act-b', 'data.bin'), 'utf8')).toBe('B data');
    // Same for another key of the same activity.
    expect((await fetch(getA.url.replace('/data.bin?', '/other.bin?'))).status).toBe(403);
  });

  test('the wrong method is refused with 405', async () => {
    await api.putBlob('act-m', 'a.txt', 'original');
    const get = await broker.presign({ activityId: 'act-m', key: 'a.txt', method: 'GET' });
    const put = await broker.presign({ activityId: 'act-m', key: 'a.txt', method: 'PUT' });
    expect((await fetch(get.url, { method: 'PUT', body: 'overwritten' })).status).toBe(405);
    expect(readFileSync(api.blobPath('act-m', 'a.txt'), 'utf8')).toBe('original');
    expect((await fetch(put.url)).status).toBe(405);
    expect((await fetch(get.url, { method: 'DELETE' })).status).toBe(405);
    expect((await fetch(get.url, { method: 'HEAD' })).status).toBe(200);
  });

  test('an upload over the size cap is refused with 413 and leaves nothing behind', async () => {
    const put = await broker.presign({ activityId: 'act-big', key: 'big.bin', method: 'PUT' });
    const r = await fetch(put.url, { method: 'PUT', body: randomBytes(MAX_PUT + 1) });
    expect(r.status).toBe(413);
    expect(existsSync(api.blobPath('act-big', 'big.bin'))).toBe(false);
    // A streamed (chunked) body declares no length: the cap is enforced while reading, and the temp file goes.
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(MAX_PUT / 4));
        c.close();
      },
    });
    const streamed = await fetch(put.url, { method: 'PUT', body: chunks, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(existsSync(api.blobPath('act-big', 'big.bin'))).toBe(false);
    expect(readdirSync(join(dataDir, 'tmp'))).toEqual([]);
    // Exactly at the cap is fine.
    expect((await fetch(put.url, { method: 'PUT', body: randomBytes(MAX_PUT) })).status).toBe(201);
  });

  test('the subnet-api refusing a worker is STORAGE_DENIED, not retryable', async () => {
    const e = await expectWcpError(broker.presign({ activityId: 'forbidden-activity', key: 'a', method: 'GET' }));
    expect(e.code).toBe('STORAGE_DENIED');
    expect(e.retryable).toBe(false);
    expect(e.message).toContain('PERMISSION_DENIED');
  });

  test('an endpoint that is down is STORAGE_UNAVAILABLE, retryable', async () => {
    const port = await freePort();
    const down = createStorageBroker({
      endpoint: `127.0.0.1:${port}`,
      ...AUTH,
      logger: quiet,
      timeoutMs: 2000,
    });
    try {
      const e = await expectWcpError(down.presign({ activityId: 'act-1', key: 'a', method: 'GET' }));
      expect(e.code).toBe('STORAGE_UNAVAILABLE');
      expect(e.retryable).toBe(true);
      expect(e.message).toContain(`127.0.0.1:${port}`);
    } finally {
      down.close();
    }
    const closed = await expectWcpError(down.presign({ activityId: 'act-1', key: 'a', method: 'GET' }));
    expect(closed.code).toBe('STORAGE_UNAVAILABLE');
  });

  test('a stopped subnet-api turns into STORAGE_UNAVAILABLE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wcp-storage-stop-'));
    const tmpApi = await startDevSubnetApi({ dataDir: dir, logger: quiet });
    const b = createStorageBroker({
      endpoint: tmpApi.grpcEndpoint,
      ...AUTH,
      logger: quiet,
      timeoutMs: 2000,
    });
    try {
      await b.presign({ activityId: 'act-1', key: 'a', method: 'GET' });
      await tmpApi.stop();
      const e = await expectWcpError(b.presign({ activityId: 'act-1', key: 'a', method: 'GET' }));
      expect(e.code).toBe('STORAGE_UNAVAILABLE');
      expect(e.retryable).toBe(true);
    } finally {
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('broker validation of untrusted responses', () => {
  let hostile: Server;
  let endpoint: string;
  /** What the hostile server answers next. */
  let answer: () => Partial<PresignResponseWire>;
  /** Makes the hostile server hang (never answers) to exercise the deadline. */
  let hang = false;

  beforeAll(async () => {
    hostile = new Server();
    hostile.addService(loadStorageBrokerService().service, {
      Presign(_call: unknown, cb: (err: null, res: Partial<PresignResponseWire>) => void) {
        if (hang) return;
        cb(null, answer());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      hostile.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    endpoint = `127.0.0.1:${port}`;
  }, 120_000);
  afterAll(() => {
    hostile?.forceShutdown();
  });

  const good = (): PresignResponseWire => ({
    version: 1,
    url: 'https://store.example/blobs/act-1/a?sig=abc',
    method: 'METHOD_GET',
    expires_at_unix_ms: Date.now() + 60_000,
    headers: {},
    max_bytes: 0,
  });

  test.each([
    ['a non-http scheme', { url: 'file:///etc/passwd' }, 'not http(s)'],
    ['an unparseable url', { url: 'not a url' }, 'does not parse'],
    ['credentials in the url', { url: 'https://user:pw@store.example/x' }, 'credentials'],
    ['an expired url', { expires_at_unix_ms: Date.now() - 1000 }, 'already expired'],
    ['a missing expiry', { expires_at_unix_ms: 0 }, 'expires_at'],
    ['an expiry far past the TTL', { expires_at_unix_ms: Date.now() + 7 * 86_400_000 }, 'lives longer'],
    ['the wrong method', { method: 'METHOD_PUT' }, 'asked for METHOD_GET'],
    ['another protocol version', { version: 2 }, 'protocol version'],
    ['a forbidden header', { headers: { Host: 'evil.example' } }, 'not allowed'],
    ['a header with a newline', { headers: { 'x-a': 'a\r\nx-b: c' } }, 'invalid value'],
  ] as const)('refuses %s', async (_name, patch, text) => {
    answer = () => ({ ...good(), ...patch });
    const b = createStorageBroker({ endpoint, ...AUTH, logger: quiet });
    try {
      const e = await expectWcpError(b.presign({ activityId: 'act-1', key: 'a', method: 'GET', ttlSeconds: 60 }));
      expect(e.code).toBe('STORAGE_BAD_RESPONSE');
      expect(e.message).toContain(text);
      // The signature part of a URL never shows in the error.
      expect(JSON.stringify([e.message, e.details])).not.toContain('sig=abc');
    } finally {
      b.close();
    }
  });

  test('accepts a well-formed answer and lower-cases header names', async () => {
    answer = () => ({ ...good(), headers: { 'X-Amz-Acl': 'private' } });
    const b = createStorageBroker({ endpoint, ...AUTH, logger: quiet });
    try {
      const p = await b.presign({ activityId: 'act-1', key: 'a', method: 'GET', ttlSeconds: 60 });
      expect(p.headers).toEqual({ 'x-amz-acl': 'private' });
      expect(p.maxBytes).toBeUndefined();
    } finally {
      b.close();
    }
  });

  test('an AbortSignal cancels a pending call: STORAGE_UNAVAILABLE, retryable', async () => {
    hang = true;
    const b = createStorageBroker({ endpoint, ...AUTH, logger: quiet, timeoutMs: 10_000 });
    try {
      const ac = new AbortController();
      const pending = b.presign({ activityId: 'act-1', key: 'a', method: 'GET', signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      const e = await expectWcpError(pending);
      expect(e.code).toBe('STORAGE_UNAVAILABLE');
      expect(e.message).toContain('cancelled');
    } finally {
      hang = false;
      b.close();
    }
  });

  test('a server that never answers hits the deadline: STORAGE_UNAVAILABLE, retryable', async () => {
    hang = true;
    const b = createStorageBroker({ endpoint, ...AUTH, logger: quiet, timeoutMs: 300 });
    try {
      const e = await expectWcpError(b.presign({ activityId: 'act-1', key: 'a', method: 'GET' }));
      expect(e.code).toBe('STORAGE_UNAVAILABLE');
      expect(e.retryable).toBe(true);
      expect(e.message).toContain('did not answer in time');
    } finally {
      hang = false;
      b.close();
    }
  });
});
