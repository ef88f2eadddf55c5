/**
 * Issue 11, TLS on the subnet-api link with real certificates made at test time (openssl): a CA, a server
 * certificate for 127.0.0.1 and a client certificate. The dev subnet-api serves TLS (and mTLS with a client CA);
 * wcp's broker connects with the credentials built from `subnet_api.tls_*` files; a plaintext client, a client
 * trusting another CA and (under mTLS) a client without a certificate are refused. Bad TLS config names its key.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { type DevSubnetApi, startDevSubnetApi } from '../scripts/lib/subnet-api/index.ts';
import { isWcpError, type WcpError } from '../src/internal/errors.ts';
import { createLogger } from '../src/internal/logger.ts';
import { createPresignSigner, createStorageSession } from '../src/storage/auth.ts';
import { createStorageBroker } from '../src/storage/broker.ts';
import { makeTestPki } from './support/certs.ts';
import { channelCredentialsFor, readTlsMaterial } from '../src/internal/grpc-tls.ts';

const quiet = createLogger('test', { level: 'error', write: () => {} });
const WORKER_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
const AUTH = {
  signer: createPresignSigner(createStorageSession({ walletKey: WORKER_KEY, chainId: 31337, ttlMs: 3_600_000 })),
  chainId: 31337,
};

let dir: string;
let tls: DevSubnetApi;
let mtls: DevSubnetApi;
const f = (name: string) => join(dir, name);

const read = (name: string) => readFileSync(f(name));

async function refusal(p: Promise<unknown>): Promise<WcpError> {
  try {
    await p;
  } catch (e) {
    if (isWcpError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

/** By host name: Bun refuses an IP address as the TLS server name, so a TLS endpoint is named `localhost:PORT`. */
function broker(endpoint: string, creds = channelCredentialsFor(undefined)) {
  return createStorageBroker({
    endpoint: endpoint.replace('127.0.0.1', 'localhost'),
    ...AUTH,
    logger: quiet,
    timeoutMs: 3000,
    channelCredentials: creds,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-storage-tls-'));
  makeTestPki(dir);
  tls = await startDevSubnetApi({
    dataDir: f('tls-data'),
    logger: quiet,
    tls: { certPem: read('server.pem'), keyPem: read('server.key') },
  });
  mtls = await startDevSubnetApi({
    dataDir: f('mtls-data'),
    logger: quiet,
    tls: { certPem: read('server.pem'), keyPem: read('server.key'), clientCaPem: read('net-ca.pem') },
  });
}, 60_000);

afterAll(async () => {
  await tls?.stop();
  await mtls?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('subnet-api link over TLS', () => {
  test('TLS with the server CA works; a plaintext client and a client trusting another CA are refused', async () => {
    const ok = broker(
      tls.grpcEndpoint,
      channelCredentialsFor(readTlsMaterial({ caFile: f('net-ca.pem'), certFile: '', keyFile: '' }, 'subnet_api')),
    );
    const url = await ok.presign({ activityId: '7', key: 'out.bin', method: 'PUT' });
    expect(url.method).toBe('PUT');
    ok.close();

    const plain = broker(tls.grpcEndpoint);
    expect((await refusal(plain.presign({ activityId: '7', key: 'out.bin', method: 'PUT' }))).code).toBe(
      'STORAGE_UNAVAILABLE',
    );
    plain.close();
    const wrongCa = broker(tls.grpcEndpoint, credentials.createSsl(read('other-ca.pem')));
    expect((await refusal(wrongCa.presign({ activityId: '7', key: 'out.bin', method: 'PUT' }))).code).toBe(
      'STORAGE_UNAVAILABLE',
    );
    wrongCa.close();
    expect(tls.presignLog()).toHaveLength(1);
  });

  test('mTLS: a client certificate from the network CA works; without one the handshake is refused', async () => {
    const withCert = broker(
      mtls.grpcEndpoint,
      channelCredentialsFor(
        readTlsMaterial({ caFile: f('net-ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') }, 'subnet_api'),
      ),
    );
    expect((await withCert.presign({ activityId: '7', key: 'out.bin', method: 'GET' })).method).toBe('GET');
    withCert.close();
    const noCert = broker(mtls.grpcEndpoint, credentials.createSsl(read('net-ca.pem')));
    expect((await refusal(noCert.presign({ activityId: '7', key: 'out.bin', method: 'GET' }))).code).toBe(
      'STORAGE_UNAVAILABLE',
    );
    noCert.close();
    expect(mtls.presignLog()).toHaveLength(1);
  });

  test('bad TLS config names the key', () => {
    const bad = (files: { caFile: string; certFile: string; keyFile: string }) => {
      try {
        readTlsMaterial(files, 'subnet_api');
      } catch (e) {
        if (isWcpError(e, 'CONFIG_INVALID')) return e.message;
      }
      return 'no error';
    };
    expect(bad({ caFile: f('missing.pem'), certFile: '', keyFile: '' })).toContain('subnet_api.tls_ca_file');
    expect(bad({ caFile: f('net-ca.pem'), certFile: f('client.pem'), keyFile: '' })).toContain('tls_key_file');
    expect(bad({ caFile: '', certFile: f('client.pem'), keyFile: f('client.key') })).toContain('tls_ca_file');
    expect(readTlsMaterial({ caFile: '', certFile: '', keyFile: '' }, 'subnet_api')).toBeUndefined();
  });
});
