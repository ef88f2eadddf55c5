/**
 * No RPC secret from any thread: the compiled binary against an endpoint that echoes its secrets. A loopback
 * JSON-RPC server (written here) forwards to anvil until told to echo; then it answers every call with an HTTP 404
 * "Cannot POST <path>?<query> (auth <user:password>)" or a JSON-RPC error "invalid api key …" naming them, so the
 * poller, the reconciler and the supervisor all meet the secrets in error text. Secrets sit in user info, password,
 * path and query of `rpc_url`, `rpc_urls` and `ws_url`, several shorter than 8 characters, and a key is pasted into
 * `scheduler.queue_name` (which the poller's thread logs). Every byte wcp writes is
 * scanned: stdout and stderr of two daemons (JSON and pretty logs), `/status`, `/readyz`, `/metrics`, `doctor`
 * (text and JSON) and `config check` (TOML and JSON). Config refusals that must not echo a URL, and a plaintext
 * remote subnet-api, are checked on the same binary.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { type Anvil, freePort, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { OBSERVE_SETTINGS, wcpEnv } from './support/env.ts';
import { until } from './support/wait.ts';
import { finishSandbox, logLines, runWcp, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

/** Every secret of the configured URLs; most are shorter than 8 characters. */
const SECRETS = {
  user: 'wcpu',
  password: 'pw5678x',
  pathToken: 't0k3n9',
  apiKey: 'k3y42z',
  user2: 'rpcuser2',
  password2: 'LongPassword99',
  pathToken2: 'PATHTOKEN0123456789',
  apiKey2: 'QUERYSECRET0123456',
  wsUser: 'wsu1',
  wsPassword: 'wsp2x',
  wsToken: 'wstk77',
  wsKey: 'wsk88',
  /** A key pasted into `scheduler.queue_name`: the poller's thread logs the queue name. */
  pastedKey: 'c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11c0ffee11',
};

interface EchoServer {
  port: number;
  echo(on: boolean): void;
  /** Calls answered with an echo so far. */
  echoed(): number;
  close(): Promise<void>;
}

/** Forwards JSON-RPC to `target` until `echo(true)`; then echoes path, query and basic-auth credentials in errors. */
async function startEchoServer(target: string): Promise<EchoServer> {
  let echoing = false;
  let n = 0;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const header = req.headers.authorization ?? '';
      const auth = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString() : 'none';
      if (!echoing) {
        try {
          const up = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          res.writeHead(up.status, { 'content-type': 'application/json' }).end(await up.text());
        } catch {
          res.writeHead(502).end();
        }
        return;
      }
      n += 1;
      if (n % 2 === 1) {
        res.writeHead(404, { 'content-type': 'text/html' }).end(`Cannot POST ${req.url} (auth ${auth})`);
        return;
      }
      const key = new URL(req.url ?? '/', 'http://x').searchParams;
      const message = `invalid api key ${[...key.values()].join(' ')} for ${auth} at ${req.url}`;
      let ids: unknown[] = [null];
      let batch = false;
      try {
        const parsed = JSON.parse(body) as { id?: unknown } | Array<{ id?: unknown }>;
        batch = Array.isArray(parsed);
        ids = (Array.isArray(parsed) ? parsed : [parsed]).map((c) => c.id ?? null);
      } catch {}
      const replies = ids.map((id) => ({ jsonrpc: '2.0', id, error: { code: -32001, message } }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(batch ? replies : replies[0]));
    });
  });
  // A WebSocket upgrade (ws_url) is refused with the path and credentials echoed.
  srv.on('upgrade', (req, socket: Socket) => {
    socket.end(
      `HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nCannot GET ${req.url} (auth ${req.headers.authorization ?? ''})`,
    );
  });
  srv.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as { port: number }).port;
  return {
    port,
    echo: (on) => {
      echoing = on;
    },
    echoed: () => n,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

let anvil: Anvil;
let stack: Stack;
let server: EchoServer;
let sb: Sandbox;
const procs: WcpProcess[] = [];

beforeAll(async () => {
  sb = sandbox();
  anvil = await startAnvil();
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  await registerWorker(stack, anvil.accounts[1]!.address, 8);
  server = await startEchoServer(anvil.url);
}, 120_000);
afterAll(async () => {
  finishSandbox('e2e-secrets', sb, procs);
  await server?.close();
  stack?.destroy();
  await anvil?.stop();
}, 60_000);

/** The endpoints, every secret part filled in. */
function urls(): Record<string, string> {
  const s = SECRETS;
  const at = `127.0.0.1:${server.port}`;
  return {
    WCP__ETHEREUM__RPC_URL: `http://${s.user}:${s.password}@${at}/v3/${s.pathToken}?apikey=${s.apiKey}`,
    WCP__ETHEREUM__RPC_URLS: `http://${s.user2}:${s.password2}@${at}/v2/${s.pathToken2}?key=${s.apiKey2}`,
    WCP__ETHEREUM__WS_URL: `ws://${s.wsUser}:${s.wsPassword}@${at}/ws/${s.wsToken}?apikey=${s.wsKey}`,
  };
}

/** Every secret found in `text`, with some context, for the failure message. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(SECRETS)) {
    // Whole tokens only for the short ones: "wcpu" inside a longer word is not the secret.
    const re = new RegExp(`(?<![A-Za-z0-9])${secret}(?![A-Za-z0-9])`, 'gi');
    for (const m of text.matchAll(re))
      found.push(`${name}: …${text.slice(Math.max(0, m.index - 80), m.index + secret.length + 40)}…`);
  }
  return found;
}

async function get(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return `${res.status} ${await res.text()}`;
}

test('an endpoint echoing its secrets: no thread, log format, operator endpoint, doctor or config check prints one', async () => {
  const me = { privateKey: anvil.accounts[1]!.privateKey };
  const metricsPort = await freePort();
  const settings = {
    ...OBSERVE_SETTINGS,
    ...urls(),
    WCP__ETHEREUM__REQUEST_TIMEOUT: '2s',
    WCP__RECONCILER__FOLLOW_INTERVAL: '250ms',
    WCP__RECONCILER__BACKOFF_MAX: '500ms',
    WCP__SHUTDOWN__DRAIN_TIMEOUT: '1s',
  };
  const json = startWcp(
    sb,
    ['run'],
    wcpEnv(me, settings, {
      WCP__STORE__PATH: 'json.db',
      WCP__METRICS__ENABLED: 'true',
      WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}`,
      WCP_LOG_LEVEL: 'debug',
    }),
  );
  const pretty = startWcp(
    sb,
    ['run'],
    wcpEnv(me, settings, {
      WCP__STORE__PATH: 'pretty.db',
      WCP_LOG_FORMAT: 'pretty',
      WCP_LOG_LEVEL: 'debug',
      WCP__SCHEDULER__QUEUE_NAME: SECRETS.pastedKey,
    }),
  );
  procs.push(json, pretty);
  await Promise.all([json.waitFor(/poller started/, 60_000), pretty.waitFor(/poller started/, 60_000)]);
  await Promise.all([json.waitFor(/reconciler/, 30_000), pretty.waitFor(/reconciler/, 30_000)]);

  server.echo(true);
  // Both worker threads have met the echo: a warning from the poller's and from the reconciler's thread.
  await until(
    async () => {
      const tags = logLines(json)
        .filter((l) => l.level === 'warn' || l.level === 'error')
        .map((l) => String(l.tag));
      return tags.some((t) => t.startsWith('poller')) && tags.some((t) => t.startsWith('reconciler'));
    },
    (ok) => ok,
    30_000,
    'warnings from the poller and the reconciler threads',
  );
  await until(
    async () => /WARN.*\[(poller|rpc)/.test(pretty.output()),
    (ok) => ok,
    30_000,
    'a pretty warning from a worker thread',
  );
  const operator = [
    await get(metricsPort, '/status'),
    await get(metricsPort, '/readyz'),
    await get(metricsPort, '/metrics'),
  ];
  // Asynchronously: the echo server answers from this process's event loop.
  const doctors = [startWcp(sb, ['doctor'], wcpEnv(me, settings, { WCP_LOG_FORMAT: 'pretty' }))];
  doctors.push(startWcp(sb, ['doctor', '--json'], wcpEnv(me, settings)));
  procs.push(...doctors);
  const doctorCodes = await Promise.all(doctors.map((d) => d.exited));
  const check = runWcp(sb, ['config', 'check'], wcpEnv(me, settings));
  const checkJson = runWcp(sb, ['config', 'check', '--json'], wcpEnv(me, settings));
  server.echo(false);
  for (const w of [json, pretty]) w.proc.kill('SIGTERM');
  await Promise.all([json.exited, pretty.exited]);

  const everything = [
    json.output(),
    pretty.output(),
    ...operator,
    ...doctors.map((d) => d.output()),
    check.stdout,
    check.stderr,
    checkJson.stdout,
    checkJson.stderr,
  ].join('\n');
  expect(leaks(everything)).toEqual([]);
  expect(server.echoed()).toBeGreaterThan(4);
  // The echo did reach the output, masked (the worker threads' warnings carry it).
  expect(json.output().includes('Cannot POST /v3/[REDACTED]?apikey=[REDACTED]')).toBe(true);
  expect(pretty.output().includes('[poller] poller started queue=[REDACTED]')).toBe(true);
  expect(doctorCodes).toEqual([1, 1]);
  expect(check.code).toBe(0);
}, 120_000);

test('config refusals on the binary: a malformed rpc_url and a plaintext remote subnet-api, exit 3, nothing echoed', () => {
  const s = SECRETS;
  const key = { privateKey: anvil.accounts[1]!.privateKey };
  for (const [name, bad] of [
    ['WCP__ETHEREUM__RPC_URL', `${s.user}:${s.password}@rpc.example:8545/v3/${s.pathToken}?apikey=${s.apiKey}`],
    ['WCP__ETHEREUM__RPC_URLS', `http//${s.user2}:${s.password2}@rpc.example:8545/v2/${s.pathToken2}`],
    ['WCP__ETHEREUM__WS_URL', `ws:/${s.wsUser}:${s.wsPassword}@rpc.example:8546/ws/${s.wsToken}?apikey=${s.wsKey}`],
  ] as const) {
    const r = runWcp(sb, ['config', 'check'], wcpEnv(key, { [name]: bad }));
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(name.slice(5).toLowerCase().replace('__', '.'));
    expect(r.stderr).toContain('[REDACTED]@rpc.example:');
    expect(leaks(r.stdout + r.stderr)).toEqual([]);
  }
  const remote = runWcp(
    sb,
    ['config', 'check'],
    wcpEnv(key, { WCP__SUBNET_API__GRPC_ENDPOINT: 'storage.example:50051' }),
  );
  expect(remote.code).toBe(3);
  expect(remote.stderr).toContain('subnet_api.grpc_endpoint');
  expect(remote.stderr).toContain('subnet_api.allow_insecure_remote');
  const allowed = runWcp(
    sb,
    ['config', 'check'],
    wcpEnv(key, {
      WCP__SUBNET_API__GRPC_ENDPOINT: 'storage.example:50051',
      WCP__SUBNET_API__ALLOW_INSECURE_REMOTE: 'true',
    }),
  );
  expect(allowed.code, allowed.stderr).toBe(0);
  expect(allowed.stdout).toContain('allow_insecure_remote = true');
}, 60_000);
