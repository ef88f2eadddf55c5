/**
 * The spend ledger: what this worker's confirmed transactions cost, from the receipts wcp recorded (`gasUsed ×
 * effectiveGasPrice` of every `confirmed` tx event), kept in the store as one bucket per minute (`spend:{minute}`,
 * ~25 h kept, so the figures survive a restart) and in memory for the readers. From it: ETH per hour over the last
 * hour and the last 24 h, gas and ETH per completed activity, the wasted share (reverted txs, noop fills, claims
 * that won no activity), and the runway: the hours the wallet's balance lasts at the last hour's rate (the 24 h
 * rate when the last hour spent nothing). A rate is the spend in its window over the time the ledger covered of
 * it (since `spend_since`, the first start on this store; at least a minute), so a young daemon's rate is not
 * diluted by an hour it did not run.
 */
import { tryExecuteFailures } from '../chain/batch-executor.ts';
import { TOPICS } from '../chain/topics.ts';
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import type { Metrics } from '../internal/metrics.ts';
import { PREFIX, SPEND_SINCE, spendKey } from '../store/keys.ts';
import { type SpendBucket, SpendBucketSchema, SpendSinceSchema, type TxKind } from '../store/records.ts';
import type { Store } from '../store/store.ts';
import type { TxEvent } from '../txmgr/types.ts';

export const SPEND_BUCKET_MS = 60_000;
const HOUR_MS = 3_600_000;
/** Buckets older than this are deleted (the 24 h window plus an hour of slack). */
export const SPEND_KEEP_MS = 25 * HOUR_MS;
/** A rate's time base is never shorter than this (one receipt a second after start is not a rate). */
export const MIN_COVERED_MS = 60_000;

type Confirmed = Extract<TxEvent, { type: 'confirmed' }>;

/** The spend of one window. ETH figures are numbers (display and alerts); wei and gas are exact decimal strings. */
export interface SpendWindow {
  /** How much of the window the ledger covered, seconds (the rate's time base). */
  covered_s: number;
  txs: number;
  gas: string;
  wei: string;
  eth: number;
  eth_per_hour: number;
  completed: number;
  gas_per_completed: number | null;
  eth_per_completed: number | null;
  /** Share of the window's wei that bought nothing; null when nothing was spent. */
  wasted_share: number | null;
  by_kind: Record<string, { txs: number; gas: string; eth: number }>;
}

export interface Runway {
  balance_eth: number | null;
  eth_per_hour: number | null;
  /** Which window's rate: the last hour's, or the 24 h one when the last hour spent nothing. */
  rate_window: '1h' | '24h' | null;
  /** balance ÷ rate; null when the balance is unknown or nothing was spent. */
  hours: number | null;
}

export interface SpendSummary {
  since_ms: number;
  last_hour: SpendWindow;
  last_24h: SpendWindow;
  runway: Runway;
}

export interface SpendLedger {
  /** Loads the buckets and `spend_since` (written now when absent). */
  load(): Promise<void>;
  /** Books one confirmed receipt (metrics at once, the bucket in memory and, asynchronously, in the store). */
  record(ev: Confirmed): void;
  /** The figures now, and the runway of `balanceWei`. */
  summary(balanceWei: bigint | undefined): SpendSummary;
}

const eth = (wei: bigint) => Number(wei) / 1e18;
const empty = () => ({ txs: 0, gas: '0', wei: '0' });
const add = (f: { txs: number; gas: string; wei: string }, gas: bigint, wei: bigint) => ({
  txs: f.txs + 1,
  gas: (BigInt(f.gas) + gas).toString(),
  wei: (BigInt(f.wei) + wei).toString(),
});

/** Whether a confirmed receipt bought nothing: reverted, a noop fill, or a claim that won no activity. */
export function wastedReceipt(ev: Pick<Confirmed, 'kind' | 'status' | 'logs'>): boolean {
  if (ev.status === 'reverted' || ev.kind === 'noop') return true;
  if (ev.kind === 'claim' || ev.kind === 'claim_batch') return !ev.logs.some((l) => l.topics[0] === TOPICS.claimed);
  return false;
}

/**
 * Activities a confirmed receipt completed: a complete's ids, or the ids of a batch's complete calls the executor
 * did not report failed (EIP-7702 batches).
 */
export function completedBy(
  ev: Pick<Confirmed, 'kind' | 'status' | 'logs' | 'activityIds' | 'calls'>,
  wallet: string,
): number {
  if (ev.status !== 'success') return 0;
  if (ev.kind === 'complete') return ev.activityIds.length;
  if (ev.kind !== 'batch' || !ev.calls) return 0;
  const failed = tryExecuteFailures(ev.logs, wallet);
  return ev.calls.reduce((n, c, i) => n + (c.kind === 'complete' && !failed.has(i) ? c.activity_ids.length : 0), 0);
}

/** The spend of `buckets` in `[nowMs - windowMs, nowMs]`, with the ledger recording since `sinceMs`. */
export function spendWindow(buckets: Iterable<SpendBucket>, nowMs: number, windowMs: number, sinceMs: number) {
  const from = nowMs - windowMs;
  const covered = Math.max(MIN_COVERED_MS, nowMs - Math.max(from, sinceMs));
  let txs = 0;
  let gas = 0n;
  let wei = 0n;
  let wasted = 0n;
  let completed = 0;
  const kinds: Record<string, { txs: number; gas: bigint; wei: bigint }> = {};
  for (const b of buckets) {
    // A bucket counts when its minute ends inside the window (the window's edge is a minute wide).
    if (b.minute_ms + SPEND_BUCKET_MS <= from || b.minute_ms > nowMs) continue;
    completed += b.completed;
    wasted += BigInt(b.wasted.wei);
    for (const [kind, f] of Object.entries(b.by_kind)) {
      const k = kinds[kind] ?? { txs: 0, gas: 0n, wei: 0n };
      kinds[kind] = k;
      k.txs += f.txs;
      k.gas += BigInt(f.gas);
      k.wei += BigInt(f.wei);
      txs += f.txs;
      gas += BigInt(f.gas);
      wei += BigInt(f.wei);
    }
  }
  const w: SpendWindow = {
    covered_s: Math.round(covered / 1000),
    txs,
    gas: gas.toString(),
    wei: wei.toString(),
    eth: eth(wei),
    eth_per_hour: (eth(wei) * HOUR_MS) / covered,
    completed,
    gas_per_completed: completed ? Math.round(Number(gas) / completed) : null,
    eth_per_completed: completed ? eth(wei) / completed : null,
    wasted_share: wei > 0n ? Number(wasted) / Number(wei) : null,
    by_kind: Object.fromEntries(
      Object.entries(kinds).map(([k, f]) => [k, { txs: f.txs, gas: f.gas.toString(), eth: eth(f.wei) }]),
    ),
  };
  return w;
}

/** The runway of `balanceWei` at the last hour's rate (the 24 h rate when the last hour spent nothing). */
export function runwayOf(balanceWei: bigint | undefined, hour: SpendWindow, day: SpendWindow): Runway {
  const pick = hour.eth_per_hour > 0 ? hour : day.eth_per_hour > 0 ? day : undefined;
  const balance = balanceWei === undefined ? null : eth(balanceWei);
  const rate = pick?.eth_per_hour ?? null;
  return {
    balance_eth: balance,
    eth_per_hour: rate,
    rate_window: pick === undefined ? null : pick === hour ? '1h' : '24h',
    hours: balance === null || rate === null ? null : balance / rate,
  };
}

export function createSpendLedger(deps: {
  store: Store;
  metrics: Metrics;
  log: Logger;
  /** The worker's wallet: a batch's failure events are the wallet's own logs. */
  wallet: string;
  now?: () => number;
}) {
  const { store, metrics, log } = deps;
  const now = deps.now ?? Date.now;
  const buckets = new Map<number, SpendBucket>();
  let sinceMs = now();

  function bucketFor(t: number): SpendBucket {
    const minute = t - (t % SPEND_BUCKET_MS);
    let b = buckets.get(minute);
    if (!b) {
      b = { minute_ms: minute, by_kind: {}, wasted: empty(), completed: 0 };
      buckets.set(minute, b);
    }
    return b;
  }

  const ledger: SpendLedger = {
    async load() {
      const stale: number[] = [];
      for (const { value } of store.list(PREFIX.spend, SpendBucketSchema)) {
        if (value.minute_ms < now() - SPEND_KEEP_MS) stale.push(value.minute_ms);
        // A copy: the store's values are frozen, and the current minute's bucket is added to.
        else buckets.set(value.minute_ms, { ...value, by_kind: { ...value.by_kind }, wasted: { ...value.wasted } });
      }
      const since = store.get(SPEND_SINCE, SpendSinceSchema);
      if (since) sinceMs = since.since_ms;
      await store.transact((tx) => {
        if (!since) tx.put(SPEND_SINCE, { since_ms: sinceMs });
        for (const m of stale) tx.del(spendKey(m));
      });
    },
    record(ev) {
      const wei = ev.effectiveGasPrice === undefined ? 0n : ev.gasUsed * ev.effectiveGasPrice;
      metrics.gasUsed.inc({ kind: ev.kind }, Number(ev.gasUsed));
      metrics.feesPaid.inc({ kind: ev.kind }, eth(wei));
      metrics.spendWei.inc({ kind: ev.kind }, Number(wei));
      const t = now();
      const b = bucketFor(t);
      const kind: TxKind = ev.kind;
      b.by_kind = { ...b.by_kind, [kind]: add(b.by_kind[kind] ?? empty(), ev.gasUsed, wei) };
      if (wastedReceipt(ev)) b.wasted = add(b.wasted, ev.gasUsed, wei);
      b.completed += completedBy(ev, deps.wallet);
      const stale = [...buckets.keys()].filter((m) => m < t - SPEND_KEEP_MS);
      for (const m of stale) buckets.delete(m);
      // The bucket as it is when the transaction runs: later receipts of the same minute write it again.
      void store
        .transact((tx) => {
          const cur = buckets.get(b.minute_ms);
          if (cur) tx.put(spendKey(b.minute_ms), cur);
          for (const m of stale) tx.del(spendKey(m));
        })
        .catch((e: unknown) => log.warn('recording spend failed', { error: errorText(e) }));
    },
    summary(balanceWei) {
      const t = now();
      const all = [...buckets.values()];
      const last_hour = spendWindow(all, t, HOUR_MS, sinceMs);
      const last_24h = spendWindow(all, t, 24 * HOUR_MS, sinceMs);
      return { since_ms: sinceMs, last_hour, last_24h, runway: runwayOf(balanceWei, last_hour, last_24h) };
    },
  };
  return ledger;
}
