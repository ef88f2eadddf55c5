/**
 * What `/status` adds for the operator's page (`GET /`) and `wcp status`, beside the probes' figures: the worker
 * (address, registration, balance, runway, version, uptime), readiness in words, the chain's feeds (new heads, the
 * last poll and scan), the lane's pending transactions (age, bumps, the oldest stuck one), activities by state with
 * the oldest age of each and the most recent ones, the executor, and the last warnings and errors (as logged:
 * redacted). Read from memory and the store; never waits on the chain.
 */
import type { WcpConfig } from '../config/load.ts';
import type { ReadyCheck } from '../internal/http.ts';
import { recentProblems } from '../internal/log-ring.ts';
import { CLAIM_PAUSE_WORDS, type ClaimPause } from '../lifecycle/pauses.ts';
import { displayUrl } from '../internal/redact.ts';
import { buildInfo } from '../runtime/env.ts';
import { LAST_SCAN_BLOCK, PREFIX } from '../store/keys.ts';
import { InflightSchema, LaneTxSchema, ScanCheckpointSchema } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import type { ActivityHistory } from './activity-history.ts';
import type { DiscoveryView } from './discovery.ts';
import type { SpendSummary } from './spend.ts';

const PENDING = new Set(['reserved', 'sent', 'mined']);
/** Pending transactions listed at most (the lane holds `tx_policy.max_in_flight`). */
const MAX_PENDING_SHOWN = 64;

export interface PendingTx {
  nonce: number;
  kind: string;
  state: string;
  activity_ids: string[];
  hash: string | null;
  age_s: number;
  bumps: number;
  /** Pending longer than `tx_policy.bump_after`: it needed at least one bump. */
  stuck: boolean;
}

/** The lane's pending slots, oldest nonce first. */
export function pendingTxs(store: Store, nowMs: number, bumpAfterMs: number): PendingTx[] {
  const out: PendingTx[] = [];
  for (const { value: r } of store.list(PREFIX.lane, LaneTxSchema)) {
    if (!PENDING.has(r.state)) continue;
    const age = nowMs - (r.sent_at_ms ?? r.created_at_ms);
    out.push({
      nonce: r.nonce,
      kind: r.kind,
      state: r.state,
      activity_ids: r.activity_ids,
      hash: r.mined_hash ?? r.hashes.at(-1) ?? null,
      age_s: Math.round(age / 100) / 10,
      bumps: Math.max(0, r.hashes.length - 1),
      stuck: r.state !== 'mined' && age > bumpAfterMs,
    });
    if (out.length >= MAX_PENDING_SHOWN) break;
  }
  return out;
}

/** Held activities per state: how many, and the age of the oldest (since it was first recorded). */
export function activitiesByState(
  store: Store,
  nowMs: number,
): Record<string, { count: number; oldest_age_s: number }> {
  const by: Record<string, { count: number; oldest_age_s: number }> = {};
  for (const { value: r } of store.list(PREFIX.inflight, InflightSchema)) {
    const age = Math.round((nowMs - r.created_at_ms) / 1000);
    const s = by[r.state] ?? { count: 0, oldest_age_s: 0 };
    by[r.state] = s;
    s.count += 1;
    s.oldest_age_s = Math.max(s.oldest_age_s, age);
  }
  return by;
}

export interface StatusViewDeps {
  config: WcpConfig;
  store: Store;
  history: ActivityHistory;
  discovery(): DiscoveryView;
  now?: () => number;
}

/** Each reason claims are paused now, in words, with its detail. */
export function pausesInWords(
  details: Partial<Record<ClaimPause, Record<string, unknown>>>,
): Array<{ reason: ClaimPause; what: string; detail: Record<string, unknown> }> {
  return Object.entries(details).map(([reason, detail]) => ({
    reason: reason as ClaimPause,
    what: CLAIM_PAUSE_WORDS[reason as ClaimPause] ?? reason,
    detail: detail ?? {},
  }));
}

/**
 * The page's sections over `base` (the probes' `/status`), `checks` (`/readyz`) and `paused` (every reason claims
 * are paused, with its detail).
 */
export function statusView(
  deps: StatusViewDeps,
  base: Record<string, unknown>,
  checks: ReadyCheck[],
  paused: Partial<Record<ClaimPause, Record<string, unknown>>>,
): Record<string, unknown> {
  const { config, store } = deps;
  const now = (deps.now ?? Date.now)();
  const info = buildInfo();
  const spend = base.spend as SpendSummary | undefined;
  const lifecycle = base.lifecycle as { credits?: number } | null;
  const executor = base.executor as { ready: boolean; types: string[] } | null;
  const activities = activitiesByState(store, now);
  const pending = pendingTxs(store, now, config.txPolicy.bumpAfterMs);
  const stuck = pending.filter((p) => p.stuck).sort((a, b) => b.age_s - a.age_s)[0] ?? null;
  const scan = store.get(LAST_SCAN_BLOCK, ScanCheckpointSchema);
  const seen = deps.discovery();
  const chain = (base.chain ?? {}) as Record<string, unknown>;
  const lane = (base.lane ?? null) as Record<string, unknown> | null;
  return {
    worker: {
      address: config.ethereum.walletAddress,
      registered: base.registered ?? null,
      balance_eth: base.balance_eth ?? null,
      runway_hours: spend?.runway.hours ?? null,
      version: info.version,
      commit: info.commit,
      runtime: `${info.runtime} ${info.runtimeVersion}`,
      uptime_s: Math.round(process.uptime()),
    },
    readiness: { ready: checks.every((c) => c.ok), checks, claims_paused: pausesInWords(paused) },
    chain: {
      ...chain,
      ws: config.ethereum.wsUrl
        ? { url: displayUrl(config.ethereum.wsUrl), ...(seen.heads ?? { state: 'starting' }) }
        : null,
      last_found: seen.last_found,
      last_poll_error: seen.last_poll_error,
      last_scan: { checkpoint_block: scan?.block_number ?? null, ...(seen.last_scan ?? {}) },
    },
    lane: lane ? { ...lane, pending, oldest_stuck: stuck } : null,
    activities: {
      by_state: activities,
      held: Object.values(activities).reduce((a, s) => a + s.count, 0),
      recent: deps.history.list(),
    },
    executors: executor
      ? [
          {
            endpoint: displayUrl(config.executor.endpoint),
            connected: executor.ready,
            types: executor.types,
            credits: lifecycle?.credits ?? 0,
            running: (activities.assigned?.count ?? 0) + (activities.running?.count ?? 0),
          },
        ]
      : [],
    recent_problems: recentProblems(),
  };
}
