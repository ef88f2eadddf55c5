/**
 * A pool of JSON-RPC endpoints for one chain, over plain `fetch`.
 *
 * Why raw JSON-RPC and not ethers' JsonRpcProvider: the tx manager needs the node's own error code, message and
 * revert data for every call (ethers re-wraps them and guesses), a hard timeout per call (AbortSignal), the same
 * raw bytes sent to every endpoint with each answer kept apart, and no hidden caching or retrying (ethers caches
 * `getBlockNumber` and polls on its own). ethers is still used for signing and ABI work.
 *
 * Health per endpoint: consecutive failures, EWMA latency, last seen block, chain id check. A failing endpoint is
 * skipped for an exponentially growing backoff; one more than `maxLagBlocks` behind the best is not read from.
 * When no endpoint is healthy the least-bad one is still tried: the pool never refuses to try.
 */
import { WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { EndpointHealth } from './types.ts';

/** The node answered with a JSON-RPC error. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly method: string,
    readonly rpcCode: number,
    message: string,
    readonly data: unknown,
    readonly endpoint: string,
  ) {
    super(message);
  }
}

/** The call did not get a JSON-RPC answer (connection, timeout, HTTP status, unreadable body). */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly method: string,
    readonly kind: 'timeout' | 'connection' | 'http' | 'bad_response',
    message: string,
    readonly endpoint: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface RpcPoolOptions {
  urls: string[];
  chainId: number;
  logger: Logger;
  timeoutMs: number;
  maxLagBlocks: number;
  backoffMs: number;
  backoffMaxMs: number;
  now?: () => number;
}

export type BroadcastOutcome = { endpoint: string; ok: true; result: unknown } | { endpoint: string; ok: false; error: Error };

export interface RpcPool {
  /** Checks the chain id of every endpoint; throws CHAIN_ID_MISMATCH/CHAIN_UNREACHABLE if none is usable. */
  start(): Promise<void>;
  /** A read: the best endpoint first, failing over to the others on transport errors. JSON-RPC errors throw. */
  request<T>(method: string, params: unknown[]): Promise<T>;
  /** The same call to every usable endpoint in parallel; each answer reported apart. */
  broadcast(method: string, params: unknown[]): Promise<BroadcastOutcome[]>;
  /** Reads `eth_blockNumber` from every endpoint (updates lag info); returns the best block. */
  refreshHeads(): Promise<number>;
  bestBlock(): number;
  health(): EndpointHealth[];
}

interface Endpoint {
  url: string;
  /** Credentials-free label for logs (API keys often sit in the path). */
  label: string;
  failures: number;
  downUntil: number;
  latencyMs: number;
  lastBlock: number;
  chainIdOk: boolean | undefined;
}

/** `scheme://host:port` only: paths and user info of RPC URLs often carry API keys. */
export function endpointLabel(url: string, i: number): string {
  try {
    const u = new URL(url);
    return `#${i} ${u.protocol}//${u.host}`;
  } catch {
    return `#${i}`;
  }
}

export function createRpcPool(o: RpcPoolOptions): RpcPool {
  if (o.urls.length === 0) throw new WcpError('CONFIG_INVALID', 'the tx manager needs at least one RPC URL');
  const now = o.now ?? Date.now;
  const log = o.logger;
  const eps: Endpoint[] = o.urls.map((url, i) => ({
    url,
    label: endpointLabel(url, i),
    failures: 0,
    downUntil: 0,
    latencyMs: 0,
    lastBlock: -1,
    chainIdOk: undefined,
  }));
  let nextId = 1;

  function markOk(ep: Endpoint, ms: number) {
    if (ep.failures > 0) log.info('rpc endpoint recovered', { endpoint: ep.label, after_failures: ep.failures });
    ep.failures = 0;
    ep.downUntil = 0;
    ep.latencyMs = ep.latencyMs === 0 ? ms : ep.latencyMs * 0.8 + ms * 0.2;
  }

  function markFailed(ep: Endpoint, err: Error) {
    ep.failures += 1;
    const delay = Math.min(o.backoffMaxMs, o.backoffMs * 2 ** Math.min(ep.failures - 1, 16));
    ep.downUntil = now() + delay;
    const fields = { endpoint: ep.label, failures: ep.failures, backoff_ms: delay, error: err.message };
    if (ep.failures === 1 || ep.failures % 10 === 0) log.warn('rpc endpoint failing', fields);
    else log.debug('rpc endpoint failing', fields);
  }

  async function call<T>(ep: Endpoint, method: string, params: unknown[]): Promise<T> {
    const started = now();
    const id = nextId++;
    let res: Response;
    try {
      res = await fetch(ep.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
        signal: AbortSignal.timeout(o.timeoutMs),
      });
    } catch (e) {
      const name = e instanceof Error ? e.name : '';
      const err =
        name === 'TimeoutError' || name === 'AbortError'
          ? new TransportError(method, 'timeout', `${method} timed out after ${o.timeoutMs} ms (${ep.label})`, ep.label)
          : new TransportError(method, 'connection', `${method} failed to reach ${ep.label}: ${e instanceof Error ? e.message : String(e)}`, ep.label);
      markFailed(ep, err);
      throw err;
    }
    let body: { result?: unknown; error?: { code?: number; message?: string; data?: unknown } };
    try {
      const text = await res.text();
      body = JSON.parse(text) as typeof body;
    } catch (e) {
      const err =
        e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')
          ? new TransportError(method, 'timeout', `${method} timed out reading the answer (${ep.label})`, ep.label)
          : new TransportError(method, res.ok ? 'bad_response' : 'http', `${method}: HTTP ${res.status}, unreadable body (${ep.label})`, ep.label, res.status);
      markFailed(ep, err);
      throw err;
    }
    if (body && typeof body === 'object' && body.error) {
      // A JSON-RPC error is an answer: the endpoint is alive.
      markOk(ep, now() - started);
      const e = body.error;
      throw new RpcError(method, typeof e.code === 'number' ? e.code : 0, String(e.message ?? 'unknown JSON-RPC error'), e.data, ep.label);
    }
    if (!res.ok || !body || typeof body !== 'object' || !('result' in body)) {
      const err = new TransportError(method, res.ok ? 'bad_response' : 'http', `${method}: HTTP ${res.status} without a result (${ep.label})`, ep.label, res.status);
      markFailed(ep, err);
      throw err;
    }
    markOk(ep, now() - started);
    return body.result as T;
  }

  function best(): number {
    let b = -1;
    for (const ep of eps) if (ep.chainIdOk !== false && ep.lastBlock > b) b = ep.lastBlock;
    return b;
  }

  /** Usable endpoints for a read, best first: up, not lagging, freshest block, then lowest latency. */
  function ordered(): Endpoint[] {
    const t = now();
    const b = best();
    const usable = eps.filter((ep) => ep.chainIdOk !== false);
    const healthy = usable.filter((ep) => ep.downUntil <= t && (ep.lastBlock < 0 || b - ep.lastBlock <= o.maxLagBlocks));
    healthy.sort((x, y) => y.lastBlock - x.lastBlock || x.latencyMs - y.latencyMs);
    // The rest as a last resort: lagging ones first (they answer), then down ones by how soon they come back.
    const rest = usable
      .filter((ep) => !healthy.includes(ep))
      .sort((x, y) => Number(x.downUntil > t) - Number(y.downUntil > t) || x.downUntil - y.downUntil || y.lastBlock - x.lastBlock);
    return [...healthy, ...rest];
  }

  async function checkChainId(ep: Endpoint): Promise<void> {
    const hex = await call<string>(ep, 'eth_chainId', []);
    const got = Number(BigInt(hex));
    ep.chainIdOk = got === o.chainId;
    if (!ep.chainIdOk) log.error('rpc endpoint is on another chain: not used', { endpoint: ep.label, chain_id: got, want_chain_id: o.chainId });
  }

  const pool: RpcPool = {
    async start() {
      await Promise.all(eps.map((ep) => checkChainId(ep).catch(() => undefined)));
      if (eps.every((ep) => ep.chainIdOk === false)) {
        throw new WcpError('CHAIN_ID_MISMATCH', `no RPC endpoint serves chain id ${o.chainId}`, { details: eps.map((e) => e.label) });
      }
      if (!eps.some((ep) => ep.chainIdOk === true)) {
        throw new WcpError('CHAIN_UNREACHABLE', 'no RPC endpoint answered', { retryable: true, details: eps.map((e) => e.label) });
      }
      await pool.refreshHeads();
    },

    async request<T>(method: string, params: unknown[]): Promise<T> {
      let last: Error | undefined;
      for (const ep of ordered()) {
        try {
          if (ep.chainIdOk === undefined) await checkChainId(ep);
          if (ep.chainIdOk === false) continue;
          return await call<T>(ep, method, params);
        } catch (e) {
          // A JSON-RPC error is the node's answer (a revert, a bad request) — except a rate limit: try the next.
          if (e instanceof RpcError && !(e.rpcCode === -32005 || /rate limit|too many requests/i.test(e.message))) throw e;
          if (e instanceof RpcError) markFailed(ep, e);
          last = e as Error;
        }
      }
      throw last ?? new TransportError(method, 'connection', `${method}: no usable RPC endpoint`, 'none');
    },

    async broadcast(method: string, params: unknown[]): Promise<BroadcastOutcome[]> {
      const t = now();
      // Every endpoint that is up; if all are down, all of them anyway (never skip a send entirely).
      let targets = eps.filter((ep) => ep.chainIdOk !== false && ep.downUntil <= t);
      if (targets.length === 0) targets = eps.filter((ep) => ep.chainIdOk !== false);
      return await Promise.all(
        targets.map(async (ep): Promise<BroadcastOutcome> => {
          try {
            if (ep.chainIdOk === undefined) await checkChainId(ep);
            return { endpoint: ep.label, ok: true, result: await call(ep, method, params) };
          } catch (e) {
            return { endpoint: ep.label, ok: false, error: e as Error };
          }
        }),
      );
    },

    async refreshHeads() {
      const t = now();
      await Promise.all(
        eps.map(async (ep) => {
          if (ep.chainIdOk === false || ep.downUntil > t) return;
          try {
            if (ep.chainIdOk === undefined) await checkChainId(ep);
            ep.lastBlock = Number(BigInt(await call<string>(ep, 'eth_blockNumber', [])));
          } catch {
            // marked failed inside call()
          }
        }),
      );
      return best();
    },

    bestBlock: best,

    health: () =>
      eps.map((ep) => ({
        url: ep.label,
        up: ep.downUntil <= now(),
        consecutiveFailures: ep.failures,
        latencyMs: Math.round(ep.latencyMs),
        lastBlock: ep.lastBlock,
        chainIdOk: ep.chainIdOk,
      })),
  };
  return pool;
}
