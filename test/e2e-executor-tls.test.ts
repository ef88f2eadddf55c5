/**
 * Issue 11, the executor link over mTLS with the compiled binary: the slow test executor serves mTLS
 * (`--tls-cert/--tls-key/--tls-client-ca`, certificates made at test time), `dist/wcp` is given
 * `WCP__EXECUTOR__TLS_*` — its files are read at start and cross into the executor thread as bytes — and an
 * activity is claimed, run and completed on chain. Without the client certificate the executor never runs it.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chainActivity,
  e2eSuite,
  enqueue,
  fixtureEvents,
  STATUS,
  startSlowExecutor,
  type World,
} from './e2e-executor-harness.ts';
import { makeTestPki } from './support/certs.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { until, waitAllCompleted } from './support/wait.ts';

let w: World;
const { track, run, box } = e2eSuite(2, (world) => {
  w = world;
});
let pki: ReturnType<typeof makeTestPki>;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-e2e-tls-'));
  pki = makeTestPki(dir);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** wcp's env for the executor at `port` over TLS (a host name: certificates are checked against host names). */
function tlsEnv(port: number, client: boolean): Record<string, string> {
  return {
    ...executorSettings(port, w.api.grpcEndpoint),
    WCP__EXECUTOR__ENDPOINT: `localhost:${port}`,
    WCP__EXECUTOR__TLS_CA_FILE: pki.path('net-ca.pem'),
    ...(client
      ? { WCP__EXECUTOR__TLS_CERT_FILE: pki.path('client.pem'), WCP__EXECUTOR__TLS_KEY_FILE: pki.path('client.key') }
      : {}),
  };
}

test('wcp reaches an mTLS executor with its client certificate; an activity completes on chain', async () => {
  const serverTls = { cert: pki.path('server.pem'), key: pki.path('server.key'), clientCa: pki.path('net-ca.pem') };
  const exec = track(await startSlowExecutor({ handlerMs: 100, tls: serverTls }));
  const me = w.worker();
  const [id] = await enqueue(w, me.queue, 1, 'test.slow', 'json:{}');
  if (id === undefined) throw new Error('nothing enqueued');

  // Without the client certificate the executor refuses the handshake: wcp never gets a ready link, claims nothing.
  const refused = run(box(), wcpEnv(me, tlsEnv(exec.port, false)));
  await until(
    () => refused.output(),
    (o) => /CERTIFICATE_REQUIRED/.test(o),
    30_000,
    'a refused TLS handshake in the log',
  );
  refused.proc.kill('SIGKILL');
  await refused.exited;
  expect(fixtureEvents(exec, 'start')).toEqual([]);
  expect((await chainActivity(w, id)).status).toBe(STATUS.pending);

  // With it: claimed, run by the executor, completed on chain.
  const sb = box();
  const ok = run(sb, wcpEnv(me, tlsEnv(exec.port, true)));
  await waitAllCompleted(sb, w.stack, [id], me.address, 60_000, ok);
  expect(fixtureEvents(exec, 'end').map((e) => [e.activity_id, e.ok])).toEqual([[id, true]]);
}, 120_000);
