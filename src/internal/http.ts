/**
 * The operator's HTTP surface on `metrics.listen` (loopback by default): `/` (the status page, `status-page.ts`),
 * `/metrics` (Prometheus), `/healthz`
 * (alive: the loops are turning), `/readyz` (200 only when wcp can do its job; else 503 with JSON naming each failing
 * check and its fix) and `/status` (JSON: what the daemon is doing). The probes come from the supervisor; before it
 * provides them (start-up), `/healthz` answers 200 "starting" and `/readyz` 503. Read-only: any method but GET and
 * HEAD is answered 405.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { redact } from './redact.ts';
import { COMMON_HEADERS, STATUS_PAGE, STATUS_PAGE_HEADERS } from './status-page.ts';

/** One readiness check: what, whether it holds, what was seen, and the fix when it does not. */
export interface ReadyCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** What the supervisor answers the endpoints with. */
export interface OperatorProbes {
  health(): { ok: boolean; state: string; detail?: Record<string, unknown> };
  ready(): Promise<ReadyCheck[]>;
  status(): Promise<Record<string, unknown>>;
  /**
   * Debug hook (`WCP_DEBUG_MEMORY=1` only; absent otherwise): every thread's heap after a forced collection, and a
   * heap snapshot per thread when `snapshot` (a label) is given. Served at `/debug/memory` to loopback clients.
   */
  debugMemory?(snapshot?: string): Promise<unknown>;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export interface OperatorHttp {
  server: Server;
  /** Installs the supervisor's probes (until then: starting / not ready). */
  setProbes(p: OperatorProbes): void;
  close(): void;
}

function json(res: import('node:http').ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { ...COMMON_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${redact(JSON.stringify(body))}\n`);
}

/** Starts the listener on `listen` (`host:port`). */
export async function serveOperatorHttp(metrics: Metrics, listen: string, logger: Logger): Promise<OperatorHttp> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  let probes: OperatorProbes | undefined;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const fail = (e: unknown) => json(res, 500, { error: e instanceof Error ? e.message : String(e) });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...COMMON_HEADERS, allow: 'GET, HEAD' });
      res.end();
      return;
    }
    switch (path) {
      case '/':
        res.writeHead(200, STATUS_PAGE_HEADERS);
        res.end(STATUS_PAGE);
        return;
      case '/metrics':
        metrics.registry
          .metrics()
          .then((body) => {
            res.writeHead(200, { ...COMMON_HEADERS, 'content-type': metrics.registry.contentType });
            res.end(redact(body));
          })
          .catch(fail);
        return;
      case '/healthz': {
        const h = probes?.health() ?? { ok: true, state: 'starting' };
        json(res, h.ok ? 200 : 503, h);
        return;
      }
      case '/readyz':
        if (!probes)
          return json(res, 503, { ready: false, checks: [{ name: 'startup', ok: false, detail: 'wcp is starting' }] });
        probes
          .ready()
          .then((checks) => {
            const ready = checks.every((c) => c.ok);
            metrics.ready.set(ready ? 1 : 0);
            json(res, ready ? 200 : 503, { ready, checks, failing: checks.filter((c) => !c.ok).map((c) => c.name) });
          })
          .catch(fail);
        return;
      case '/debug/memory': {
        const debugMemory = probes?.debugMemory;
        if (!debugMemory || !LOOPBACK.test(req.socket.remoteAddress ?? '')) {
          res.writeHead(404);
          res.end();
          return;
        }
        const snapshot = new URL(req.url ?? '/', 'http://x').searchParams.get('snapshot') ?? undefined;
        debugMemory(snapshot)
          .then((threads) => json(res, 200, { threads }))
          .catch(fail);
        return;
      }
      case '/status':
        if (!probes) return json(res, 503, { state: 'starting' });
        probes
          .status()
          .then((s) => json(res, 200, s))
          .catch(fail);
        return;
      default:
        res.writeHead(404, COMMON_HEADERS);
        res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  logger.info('operator endpoints listening', { listen, paths: '/ /metrics /healthz /readyz /status' });
  return {
    server,
    setProbes: (p) => {
      probes = p;
    },
    close: () => server.close(),
  };
}
