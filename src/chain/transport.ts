/**
 * The one JSON-RPC transport of the daemon: every read and write of the poller, the reconciler, the lifecycle,
 * the supervisor's startup checks and the tx manager goes through `createRpcTransport`.
 *
 * - Failover: a call goes to the best usable endpoint (up, not lagging, freshest head, then lowest latency) and
 *   moves on to the next when the endpoint is at fault (`isEndpointFault`: no answer, HTTP error, rate limit).
 *   Any other JSON-RPC error is the node's answer and is thrown at once. When no endpoint is healthy the
 *   least-bad one is still tried: the transport never refuses to try.
 * - Health per endpoint (`endpoint.ts`): a failing endpoint is skipped for a growing backoff; one more than
 *   `maxLagBlocks` behind the best head (heads read by `refreshHeads`) is not read from; an endpoint on another
 *   chain (checked before its first use) is never used.
 * - `broadcast`: the same call (a raw transaction) to every usable endpoint at once, each answer kept apart.
 * - `status()`: a per-endpoint snapshot (head, lag, health, errors by kind) with credential-free URLs.
 */
import { type BackoffPolicy, backoffDelayMs } from '../internal/backoff.ts';
import { WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { createEndpointCaller, type Endpoint, type EndpointStatus, newEndpoint } from './endpoint.ts';
import { isEndpointFault, RpcError, shouldRetry } from './rpc-error.ts';

export type { EndpointStatus } from './endpoint.ts';
export { RpcError, type RpcErrorKind, shouldRetry, toHex } from './rpc-error.ts';

/** The seam every chain read takes: tests point it at anvil, a proxy or a fake. */
export interface RpcTransport {
  request<T>(method: string, params: unknown[]): Promise<T>;
}

/** Where the endpoints are and how they are judged; plain data (it crosses into worker threads). */
export interface RpcTransportOptions {
  urls: string[];
  chainId: number;
  /** Per call (`ethereum.request_timeout`). */
  timeoutMs: number;
  /** An endpoint this many blocks behind the best head is not read from (`tx_policy.max_lag_blocks`). */
  maxLagBlocks: number;
  /** A failing endpoint is skipped for this long, doubling per failure up to the max. */
  endpointBackoffMs: number;
  endpointBackoffMaxMs: number;
}

/** Seams that are not options: where logs go, the HTTP client, the clock. */
export interface RpcTransportDeps {
  logger?: Logger;
  fetchFn?: typeof fetch;
  now?: () => number;
}

export type BroadcastOutcome =
  | { endpoint: string; ok: true; result: unknown }
  | { endpoint: string; ok: false; error: RpcError };

/** The transport with its endpoint management: what the tx manager and the supervisor use. */
export interface RpcClient extends RpcTransport {
  /** Checks the chain id of every endpoint; throws CHAIN_ID_MISMATCH if none serves it, CHAIN_UNREACHABLE if none answered. */
  checkChainIds(): Promise<void>;
  /** The same call to every usable endpoint in parallel; each answer reported apart. Never throws. */
  broadcast(method: string, params: unknown[]): Promise<BroadcastOutcome[]>;
  /** Reads `eth_blockNumber` from every endpoint not in backoff (updates lag); returns the best head, -1 if none. */
  refreshHeads(): Promise<number>;
  /** The best head seen by `refreshHeads`, -1 before. */
  bestBlock(): number;
  status(): EndpointStatus[];
}

/** How a step retries a transient RPC failure in place: `attempts` tries at most, waits by `backoff`. */
export interface RetryPolicy extends BackoffPolicy {
  attempts: number;
}

/** The retry policy of the lifecycle's and tx manager's calls: a reset or timeout costs ~¼ s, not a 15 s re-check. */
export const STEP_RETRY: RetryPolicy = Object.freeze({ attempts: 4, baseMs: 200, maxMs: 2_000 });

/**
 * Runs `fn`, trying again after a backoff while it fails with a transient error (`shouldRetry`: no answer,
 * timeout, 5xx, a rate limit or a lagging node's answer), up to `policy.attempts` tries; the last error is
 * thrown. Answers about the request itself (a revert, insufficient funds) are thrown at once. `onRetry` sees each
 * retried failure (for a log line).
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy = STEP_RETRY,
  onRetry?: (e: unknown, attempt: number, waitMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= policy.attempts || !shouldRetry(e)) throw e;
      const wait = backoffDelayMs(policy, attempt);
      onRetry?.(e, attempt, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export function createRpcTransport(o: RpcTransportOptions, deps: RpcTransportDeps = {}): RpcClient {
  if (o.urls.length === 0) throw new WcpError('CONFIG_INVALID', 'no RPC endpoint configured');
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const eps: Endpoint[] = o.urls.map(newEndpoint);
  const caller = createEndpointCaller({
    timeoutMs: o.timeoutMs,
    backoff: { baseMs: o.endpointBackoffMs, maxMs: o.endpointBackoffMaxMs },
    log,
    fetchFn: deps.fetchFn ?? fetch,
    now,
  });

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
    const healthy = usable.filter(
      (ep) => ep.downUntil <= t && (ep.lastBlock < 0 || b - ep.lastBlock <= o.maxLagBlocks),
    );
    healthy.sort((x, y) => y.lastBlock - x.lastBlock || x.latencyMs - y.latencyMs);
    // The rest as a last resort: lagging ones first (they answer), then down ones by how soon they come back.
    const rest = usable
      .filter((ep) => !healthy.includes(ep))
      .sort(
        (x, y) =>
          Number(x.downUntil > t) - Number(y.downUntil > t) || x.downUntil - y.downUntil || y.lastBlock - x.lastBlock,
      );
    return [...healthy, ...rest];
  }

  async function checkChainId(ep: Endpoint): Promise<void> {
    const hex = await caller.call<string>(ep, 'eth_chainId', []);
    const got = Number(BigInt(hex));
    ep.chainIdOk = got === o.chainId;
    if (!ep.chainIdOk)
      log?.error('rpc endpoint is on another chain: not used', {
        endpoint: ep.label,
        chain_id: got,
        want_chain_id: o.chainId,
      });
  }

  function mismatch(): WcpError {
    return new WcpError('CHAIN_ID_MISMATCH', `no RPC endpoint serves chain id ${o.chainId} (ethereum.chain_id)`, {
      details: eps.map((e) => e.label),
    });
  }

  const client: RpcClient = {
    async request<T>(method: string, params: unknown[]): Promise<T> {
      let last: unknown;
      for (const ep of ordered()) {
        try {
          if (ep.chainIdOk === undefined) await checkChainId(ep);
          if (ep.chainIdOk === false) continue;
          return await caller.call<T>(ep, method, params);
        } catch (e) {
          if (!(e instanceof RpcError) || !isEndpointFault(e)) throw e;
          if (e.kind === 'rpc') caller.markFailed(ep, e);
          last = e;
        }
      }
      if (last === undefined) throw mismatch();
      throw last;
    },

    async checkChainIds() {
      await Promise.all(eps.map((ep) => checkChainId(ep).catch(() => undefined)));
      if (eps.every((ep) => ep.chainIdOk === false)) throw mismatch();
      if (!eps.some((ep) => ep.chainIdOk === true)) {
        throw new WcpError('CHAIN_UNREACHABLE', 'no RPC endpoint answered', {
          retryable: true,
          details: eps.map((e) => `${e.label}: ${e.lastError ?? 'no answer'}`),
        });
      }
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
            if (ep.chainIdOk === false)
              throw new RpcError('rpc', method, `not sent: ${ep.label} is on another chain`, {
                endpoint: ep.label,
                retryable: false,
              });
            return { endpoint: ep.label, ok: true, result: await caller.call(ep, method, params) };
          } catch (e) {
            const error =
              e instanceof RpcError
                ? e
                : new RpcError('transport', method, String(e), { endpoint: ep.label, cause: e });
            return { endpoint: ep.label, ok: false, error };
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
            if (ep.chainIdOk) ep.lastBlock = Number(BigInt(await caller.call<string>(ep, 'eth_blockNumber', [])));
          } catch {
            // counted against the endpoint inside call()
          }
        }),
      );
      return best();
    },

    bestBlock: best,

    status() {
      const t = now();
      const b = best();
      return eps.map((ep) => ({
        url: ep.label,
        up: ep.downUntil <= t,
        consecutiveFailures: ep.failures,
        latencyMs: Math.round(ep.latencyMs),
        lastBlock: ep.lastBlock,
        lagBlocks: ep.lastBlock >= 0 && b >= 0 ? b - ep.lastBlock : 0,
        chainIdOk: ep.chainIdOk,
        errors: { ...ep.errors },
        lastError: ep.lastError,
      }));
    },
  };
  return client;
}
