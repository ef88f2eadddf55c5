/**
 * Issue 11, the executor link over mTLS with real certificates made at test time (openssl): a network CA signing
 * the executor's server certificate and wcp's client certificate, and a second CA signing a rogue client. The SDK
 * executor serves mTLS (`createExecutor({ tls })`); the bridge, built from the options `compileOptions` makes of
 * `executor.tls_*`, connects and a task round-trips. Refused: a client without a certificate, a plaintext client,
 * a client whose certificate another CA signed, and a wcp trusting another CA. `wcp doctor`'s executor check uses
 * the same keys. (The loader's rule for a remote endpoint is in src/config/load.test.ts.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import { executorCheck } from '../src/doctor/link-checks.ts';
import { isWcpError } from '../src/internal/errors.ts';
import { readTlsMaterial, type TlsMaterial } from '../src/internal/grpc-tls.ts';
import { compileOptions } from '../src/supervisor/options.ts';
import { readExecutorTls } from '../src/wep/tls.ts';
import { makeTestPki } from './support/certs.ts';
import { bridgeFor, events, forId, isState, runCleanups, sdkExecutor, task } from './fixtures/bridge-kit.ts';

const KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

let dir: string;
const f = (name: string) => join(dir, name);

/** wcp's client TLS as the config names it: `ca` trusted for the executor, and the client certificate `client`. */
function wcpTls(ca: string, client?: string): TlsMaterial {
  const m = readTlsMaterial(
    {
      caFile: f(`${ca}-ca.pem`),
      certFile: client ? f(`${client}.pem`) : '',
      keyFile: client ? f(`${client}.key`) : '',
    },
    'executor',
  );
  if (m === undefined) throw new Error('a CA file gives TLS material');
  return m;
}

/** The executor serving mTLS: its certificate, and the network CA that must have signed wcp's. */
function mtlsServer() {
  const tls = readExecutorTls({ certFile: f('server.pem'), keyFile: f('server.key'), clientCaFile: f('net-ca.pem') });
  if (tls === undefined) throw new Error('certificate and key give TLS material');
  return sdkExecutor(2, { tls });
}

/** A bridge that must never become ready: it dials (and backs off, for reason `why`) a few times. */
async function expectRefused(port: number, extra: Parameters<typeof bridgeFor>[2], why: RegExp): Promise<void> {
  const ev = events();
  const bridge = bridgeFor(port, ev, { endpoint: `localhost:${port}`, ...extra });
  const until = Date.now() + 5000;
  while (bridge.status().connects < 3 && Date.now() < until) await Bun.sleep(20);
  expect(bridge.status().connects).toBeGreaterThanOrEqual(3);
  expect(ev.list.some(isState('ready'))).toBe(false);
  expect(ev.list.some(isState('handshaking'))).toBe(false);
  const first = ev.list.find(isState('backoff'));
  expect(first?.detail).toMatch(why);
}

/** The config with `executor.*` set by env, loaded from the embedded local config, its store in the temp dir. */
function configWith(executor: Record<string, string>) {
  const env: Record<string, string> = { WCP__ETHEREUM__WALLET_PRIVATE_KEY: KEY, WCP__STORE__PATH: f('wcp.db') };
  for (const [k, v] of Object.entries(executor)) env[`WCP__EXECUTOR__${k.toUpperCase()}`] = v;
  return loadConfig({ env, cwd: dir });
}

const mtlsKeys = (port: number) => ({
  endpoint: `localhost:${port}`,
  tls_ca_file: 'net-ca.pem', // relative: resolved against the working directory
  tls_cert_file: f('client.pem'),
  tls_key_file: f('client.key'),
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-executor-tls-'));
  makeTestPki(dir);
}, 60_000);

afterEach(runCleanups, 30_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('executor link over mTLS', () => {
  test('the bridge built from executor.tls_* connects with its client certificate; a task round-trips', async () => {
    const { port, exec, stats } = await mtlsServer();
    const bridgeOpts = compileOptions(configWith(mtlsKeys(port))).executor.bridge;
    expect(bridgeOpts.tls?.cert).toBeDefined();
    const ev = events();
    const bridge = bridgeFor(port, ev, bridgeOpts);
    await ev.waitFor(isState('ready'));
    expect(exec.status().connected).toBe(true);
    const t = task(20);
    await bridge.assign(t);
    const done = await ev.waitFor(forId('completion', t.activity_id));
    expect(done.result).toMatchObject({ ok: true, output_refs: { out: `blob:${t.activity_id}/out.bin` } });
    expect(stats.calls).toBe(1);
  });

  test('tls_server_name: an IP endpoint is verified against the name the certificate carries', async () => {
    const { port } = await mtlsServer();
    const ev = events();
    bridgeFor(port, ev, {
      endpoint: `127.0.0.1:${port}`,
      tls: wcpTls('net', 'client'),
      tlsServerName: 'executor.test',
    });
    await ev.waitFor(isState('ready'));
    // A name the certificate does not carry is refused like a wrong certificate.
    await expectRefused(
      port,
      {
        endpoint: `127.0.0.1:${port}`,
        tls: wcpTls('net', 'client'),
        tlsServerName: 'elsewhere.test',
      },
      /ALTNAME_INVALID/,
    );
  });

  test('refused: no client certificate, plaintext, a certificate from another CA', async () => {
    const { port, exec, stats } = await mtlsServer();
    await expectRefused(port, { tls: wcpTls('net') }, /CERTIFICATE_REQUIRED/);
    // The server ends these handshakes without a reason the client can read.
    await expectRefused(port, {}, /UNAVAILABLE/);
    await expectRefused(port, { tls: { ...wcpTls('net'), ...rogue() } }, /UNAVAILABLE/);
    expect(exec.status().connected).toBe(false);
    expect(stats.calls).toBe(0);
  });

  test('refused: wcp trusting another CA does not accept the executor', async () => {
    const { port, exec } = await mtlsServer();
    await expectRefused(port, { tls: wcpTls('other', 'client') }, /self.signed certificate/);
    expect(exec.status().connected).toBe(false);
  });

  test('doctor: the executor check dials with executor.tls_*, and names TLS when the handshake fails', async () => {
    const { port } = await mtlsServer();
    const ok = await executorCheck(configWith(mtlsKeys(port)));
    expect(ok.status).toBe('pass');
    const noCert = await executorCheck(configWith({ endpoint: `localhost:${port}`, tls_ca_file: f('net-ca.pem') }));
    expect(noCert.status).toBe('fail');
    expect(noCert.detail).toContain('TLS handshake failed');
    const missing = await executorCheck(configWith({ ...mtlsKeys(port), tls_ca_file: f('missing.pem') }));
    expect(missing).toMatchObject({ status: 'fail' });
    expect(missing.detail).toContain('executor.tls_ca_file');
  });

  test('bad files name the executor key; the SDK refuses half a server configuration', () => {
    const message = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        return isWcpError(e) ? `${e.code} ${e.message}` : String(e);
      }
      return 'no error';
    };
    expect(
      message(() => compileOptions(configWith({ endpoint: 'localhost:7070', tls_ca_file: f('missing.pem') }))),
    ).toBe('CONFIG_INVALID executor.tls_ca_file: no file at the configured path'); // a path naming no file is not shown
    expect(
      message(() => readTlsMaterial({ caFile: f('net-ca.pem'), certFile: f('client.pem'), keyFile: '' }, 'executor')),
    ).toContain('executor.tls_cert_file and executor.tls_key_file go together');
    expect(message(() => readExecutorTls({ certFile: f('server.pem') }))).toContain('go together');
    expect(message(() => readExecutorTls({ clientCaFile: f('net-ca.pem') }))).toContain('needs the server certificate');
    expect(readExecutorTls({})).toBeUndefined();
  });
});

/** The rogue client's certificate and key (signed by the other CA). */
function rogue(): { cert: Uint8Array; key: Uint8Array } {
  return { cert: readFileSync(f('rogue.pem')), key: readFileSync(f('rogue.key')) };
}
