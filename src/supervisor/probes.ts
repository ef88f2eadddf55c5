/**
 * What the operator endpoints answer (`/healthz`, `/readyz`, `/status`) and the gauges an operator alerts on,
 * from the supervisor's components. A watch refreshes, every `scheduler.poll_interval`, what needs the chain:
 * endpoint heads and lag, the wallet's balance against a few lifecycles at current fees, registration, whether the
 * TaskQueue knows the queue, and RPC errors by endpoint and class; the endpoints read its last results (they never
 * wait on the chain), and the supervisor turns each round's facts into claim pauses (`onWatch`).
 */
import { type BatchMode, type Delegation, describeDelegation, readDelegation } from '../chain/batch-executor.ts';
import { isWorkerActive } from '../chain/control-plane.ts';
import { queueKnown } from '../chain/deployment.ts';
import type { RpcClient } from '../chain/transport.ts';
import type { WcpConfig } from '../config/load.ts';
import { FUNDED_LIFECYCLES, LIFECYCLE_GAS, MIN_LIFECYCLES } from '../doctor/chain-checks.ts';
import { errorText } from '../internal/errors.ts';
import type { OperatorProbes, ReadyCheck } from '../internal/http.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import { displayUrl } from '../internal/redact.ts';
import type { ActivityManager } from '../lifecycle/manager.ts';
import { describeRefusal, type StorageRefusalReason } from '../storage/refusal.ts';
import type { Store } from '../store/store.ts';
import { summarizeStore } from '../store/summary.ts';
import type { TxManager } from '../txmgr/index.ts';
import type { SpendLedger } from './spend.ts';

/** The watch reads the chain every `scheduler.poll_interval`, but never more often than this. */
export const MIN_WATCH_MS = 250;
/** The lifecycle loop counts as stuck when it has not turned for this long. */
export const LOOP_STALL_MS = 30_000;
/**
 * The store summary (a scan of every done record: a day's can be large) is reused for this many times as long as
 * it took to make, so a status page open on a big store (one `/status` every 2 s) costs at most a tenth of a core.
 */
export const SUMMARY_REUSE_FACTOR = 10;

export interface ProbeSources {
  config: WcpConfig;
  store: Store;
  rpc: () => RpcClient | undefined;
  manager: () => ActivityManager | undefined;
  txm: () => TxManager | undefined;
  state: () => string;
  /** How lifecycle calls reach the chain (the supervisor's start-up decision). */
  batch?: () => BatchMode;
  metrics: Metrics;
  log: Logger;
  /** The spend ledger: `/status` shows its figures and the runway of the watched balance. */
  spend?: SpendLedger;
  /** Checks only the supervisor knows (e.g. no foreign transaction), appended to `/readyz`. */
  extraChecks?: () => ReadyCheck[];
  /** After every watch round: what it read (fields it could not read are absent). */
  onWatch?: (w: WatchFacts) => void;
  now?: () => number;
}

interface WatchResult {
  at: number;
  balanceWei?: bigint;
  gasPriceWei?: bigint;
  active?: boolean;
  /** Whether the TaskQueue has ever seen `scheduler.queue_name`. */
  queueKnown?: boolean;
  /** What the wallet is delegated to (EIP-7702). */
  delegation?: Delegation;
  error?: string;
}

/** What a watch round read, for the claim pauses. */
export interface WatchFacts {
  active?: boolean;
  /** Balance against `MIN_LIFECYCLES` lifecycles at current fees (absent: not read). */
  funded?: { ok: boolean; balanceEth: number; lifecycles: number };
  queueKnown?: boolean;
}

export interface Probes extends OperatorProbes {
  /** Starts the chain watch (first round at once). */
  start(): void;
  stop(): void;
}

const wei = (x: unknown) => BigInt(typeof x === 'string' ? x : '0x0');
const eth = (w: bigint) => Number(w) / 1e18;

/** The probes over `s`. */
export function createProbes(s: ProbeSources): Probes {
  const now = s.now ?? Date.now;
  const { config, metrics } = s;
  const wallet = config.ethereum.walletAddress;
  let watch: WatchResult = { at: 0 };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const watchMs = Math.max(config.scheduler.pollIntervalMs, MIN_WATCH_MS);
  /** A watch result older than this is stale: three rounds, plus one slow request. */
  const staleMs = watchMs * 3 + config.ethereum.requestTimeoutMs;
  const errorsSeen = new Map<string, number>();
  let summary: { at: number; tookMs: number; value: ReturnType<typeof summarizeStore> } | undefined;

  function storeSummary() {
    const t = now();
    if (summary && t - summary.at < summary.tookMs * SUMMARY_REUSE_FACTOR) return summary.value;
    const started = performance.now();
    const value = summarizeStore(s.store, t);
    summary = { at: t, tookMs: performance.now() - started, value };
    return value;
  }

  async function round(): Promise<void> {
    const rpc = s.rpc();
    if (!rpc) return;
    const next: WatchResult = { at: now() };
    try {
      await rpc.refreshHeads().catch(() => undefined);
      const [bal, price, active, known, delegation] = await Promise.all([
        rpc.request<string>('eth_getBalance', [wallet, 'latest']),
        rpc.request<string>('eth_gasPrice', []),
        isWorkerActive(rpc, config.ethereum.subnetControlPlane, wallet),
        queueKnown(rpc, config.ethereum.taskQueue, config.scheduler.queueName),
        readDelegation(rpc, wallet),
      ]);
      next.delegation = delegation;
      next.balanceWei = wei(bal);
      next.gasPriceWei = wei(price);
      next.active = active;
      next.queueKnown = known;
      metrics.walletBalance.set(eth(next.balanceWei));
      const runway = s.spend?.summary(next.balanceWei).runway.hours;
      if (runway !== undefined) metrics.runwayHours.set(runway ?? Number.POSITIVE_INFINITY);
    } catch (e) {
      next.error = errorText(e);
    }
    for (const ep of rpc.status()) {
      const name = displayUrl(ep.url.replace(/^#\d+ /, ''));
      if (ep.lastBlock >= 0) metrics.chainHead.set({ endpoint: name }, ep.lastBlock);
      metrics.chainLag.set({ endpoint: name }, ep.lagBlocks);
      for (const [cls, n] of Object.entries(ep.errors)) {
        const key = `${name}|${cls}`;
        const delta = n - (errorsSeen.get(key) ?? 0);
        if (delta > 0) metrics.rpcErrors.inc({ endpoint: name, class: cls }, delta);
        errorsSeen.set(key, n);
      }
    }
    watch = next;
    const f = funded();
    s.onWatch?.({
      ...(next.active === undefined ? {} : { active: next.active }),
      ...(next.queueKnown === undefined ? {} : { queueKnown: next.queueKnown }),
      ...(f.lifecycles === undefined
        ? {}
        : { funded: { ok: f.ok, balanceEth: eth(next.balanceWei ?? 0n), lifecycles: Number(f.lifecycles) } }),
    });
    // wcp_ready follows every watch round, not only the /readyz requests.
    const checks = await probes.ready().catch(() => [{ ok: false }]);
    metrics.ready.set(checks.every((c) => c.ok) ? 1 : 0);
  }

  /** The next round one interval after this one ends (rounds never overlap on a slow node). */
  function loop(): void {
    if (stopped) return;
    void round()
      .catch((e: unknown) => s.log.warn('readiness watch round failed', { error: errorText(e) }))
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(loop, watchMs);
        timer.unref?.();
      });
  }

  function funded(): { ok: boolean; lifecycles?: bigint; perLifecycleWei?: bigint } {
    if (watch.balanceWei === undefined || watch.gasPriceWei === undefined) return { ok: false };
    const per = LIFECYCLE_GAS * watch.gasPriceWei;
    const lifecycles = per === 0n ? FUNDED_LIFECYCLES : watch.balanceWei / per;
    return { ok: lifecycles >= MIN_LIFECYCLES, lifecycles, perLifecycleWei: per };
  }

  function managerStatus() {
    const m = s.manager()?.status();
    if (m) {
      metrics.executorConnected.set(m.executor.ready ? 1 : 0);
      metrics.executorCredits.set(m.credits);
    }
    return m;
  }

  const probes: Probes = {
    start() {
      loop();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    health() {
      const state = s.state();
      const m = managerStatus();
      const idleMs = m ? now() - m.last_tick_ms : 0;
      const alive = (state === 'starting' || state === 'running' || state === 'draining') && idleMs < LOOP_STALL_MS;
      return { ok: alive, state, detail: { lifecycle: m?.state ?? 'not started', loop_idle_ms: idleMs } };
    },
    async ready() {
      const checks: ReadyCheck[] = [];
      const rpc = s.rpc();
      const eps = rpc?.status() ?? [];
      const up = eps.filter((e) => e.up);
      checks.push(
        up.length > 0
          ? {
              name: 'chain',
              ok: true,
              detail: `${up.length}/${eps.length} endpoint(s) answering on chain ${config.ethereum.chainId}`,
            }
          : {
              name: 'chain',
              ok: false,
              detail: eps.length
                ? eps.map((e) => `${e.url}: ${e.lastError ?? 'down'}`).join('; ')
                : 'not connected yet',
              fix: 'check ethereum.rpc_url / rpc_urls (wcp doctor names the cause)',
            },
      );
      const fresh = watch.at > 0 && now() - watch.at < staleMs;
      checks.push(
        fresh && !watch.error
          ? { name: 'contracts', ok: true, detail: 'SubnetControlPlane answers' }
          : {
              name: 'contracts',
              ok: false,
              detail: watch.error ?? 'not read yet',
              fix: 'run wcp doctor: it checks every contract address',
            },
      );
      checks.push(
        watch.active === true
          ? { name: 'registered', ok: true, detail: `${wallet} is an active worker` }
          : {
              name: 'registered',
              ok: false,
              detail: watch.active === false ? `${wallet} is not an active worker` : 'not read yet',
              fix: `ask the subnet owner to register and activate ${wallet}`,
            },
      );
      const queue = JSON.stringify(config.scheduler.queueName);
      checks.push(
        watch.queueKnown === true
          ? { name: 'queue', ok: true, detail: `scheduler.queue_name ${queue} is known to the TaskQueue` }
          : {
              name: 'queue',
              ok: false,
              detail:
                watch.queueKnown === false
                  ? `scheduler.queue_name ${queue}: nothing was ever enqueued on it at TaskQueue ${config.ethereum.taskQueue}`
                  : 'not read yet',
              fix: 'set scheduler.queue_name to the queue the subnet enqueues on (names are case-sensitive)',
            },
      );
      const f = funded();
      checks.push(
        f.ok
          ? {
              name: 'funded',
              ok: true,
              detail: `balance ${eth(watch.balanceWei ?? 0n)} ETH ≈ ${f.lifecycles} lifecycles`,
            }
          : {
              name: 'funded',
              ok: false,
              detail:
                f.lifecycles === undefined
                  ? 'balance not read yet'
                  : `balance ${eth(watch.balanceWei ?? 0n)} ETH ≈ ${f.lifecycles} lifecycles (need ${MIN_LIFECYCLES})`,
              fix: `send ETH to ${wallet} (one lifecycle ≈ ${LIFECYCLE_GAS} gas at today's fees)`,
            },
      );
      const m = managerStatus();
      const claiming = config.scheduler.mode === 'claim';
      if (claiming) {
        checks.push(
          m?.executor.ready
            ? {
                name: 'executor',
                ok: true,
                detail: `connected; types ${m.executor.types.join(', ') || 'none'}; credits ${m.credits}`,
              }
            : {
                name: 'executor',
                ok: false,
                detail: 'no executor connected',
                fix: `start the executor (the WEP) on ${config.executor.endpoint}`,
              },
        );
        if (m) checks.push(subnetApiReady(m.executor, config.subnetApi.grpcEndpoint));
      }
      const state = s.state();
      checks.push(
        state === 'running'
          ? { name: 'store', ok: true, detail: `${config.store.path} open` }
          : {
              name: 'store',
              ok: false,
              detail: `supervisor ${state}`,
              fix: 'wait for start-up, or read the log for why it stopped',
            },
      );
      return [...checks, ...(s.extraChecks?.() ?? [])];
    },
    async status() {
      const m = managerStatus();
      const t = s.txm()?.status();
      const f = funded();
      return {
        state: s.state(),
        mode: config.scheduler.mode,
        wallet,
        queue: config.scheduler.queueName,
        lifecycle: m ?? null,
        claims_paused: m?.claims_paused ?? [],
        executor: m?.executor ?? null,
        lane: t
          ? { state: t.state, next_nonce: t.nextNonce, in_flight: t.inFlight, funds_blocked: t.fundsBlocked }
          : null,
        store: storeSummary(),
        chain: { head: s.rpc()?.bestBlock() ?? null, endpoints: s.rpc()?.status() ?? [] },
        delegation: watch.delegation
          ? {
              kind: watch.delegation.kind,
              ...(watch.delegation.kind === 'foreign' ? { delegate: watch.delegation.delegate } : {}),
              detail: describeDelegation(watch.delegation),
            }
          : null,
        batch: s.batch?.() ?? null,
        balance_eth: watch.balanceWei === undefined ? null : eth(watch.balanceWei),
        registered: watch.active ?? null,
        ...(s.spend ? { spend: s.spend.summary(watch.balanceWei) } : {}),
        funded_lifecycles: f.lifecycles === undefined ? null : Number(f.lifecycles),
        watch_age_s: watch.at ? Math.round((now() - watch.at) / 1000) : null,
      };
    },
  };
  return probes;
}

/**
 * The `subnet-api` readiness check: failing while the storage service refuses the worker itself (with the cause
 * and the fix) or cannot be reached; work needing storage is neither claimed nor dispatched meanwhile.
 */
export function subnetApiReady(
  ex: { storage_available: boolean; storage_refused: { reason: string; detail: string } | null },
  endpoint: string,
): ReadyCheck {
  const name = 'subnet-api';
  if (ex.storage_available) return { name, ok: true, detail: `${endpoint}: storage service answers` };
  if (ex.storage_refused) {
    const { cause, fix } = describeRefusal(ex.storage_refused.reason as StorageRefusalReason, endpoint);
    return { name, ok: false, detail: `${cause} [${ex.storage_refused.reason}]: ${ex.storage_refused.detail}`, fix };
  }
  return {
    name,
    ok: false,
    detail: `${endpoint}: storage service not answering`,
    fix: 'start the subnet-api (storage broker) and check subnet_api.grpc_endpoint',
  };
}
