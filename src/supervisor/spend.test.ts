import { expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOPICS } from '../chain/topics.ts';
import { createLogger } from '../internal/logger.ts';
import { createMetrics } from '../internal/metrics.ts';
import { PREFIX } from '../store/keys.ts';
import { openStore } from '../store/store.ts';
import type { TxEvent } from '../txmgr/types.ts';
import { createSpendLedger, SPEND_KEEP_MS, wastedReceipt } from './spend.ts';

type Confirmed = Extract<TxEvent, { type: 'confirmed' }>;
const HOUR = 3_600_000;
const GWEI = 1_000_000_000n;

function receipt(kind: Confirmed['kind'], gas: bigint, o: Partial<Confirmed> = {}): Confirmed {
  return {
    type: 'confirmed',
    kind,
    nonce: 0,
    activityIds: ['1'],
    hash: '0x01',
    blockNumber: 1,
    blockHash: '0x02',
    status: 'success',
    gasUsed: gas,
    effectiveGasPrice: 10n * GWEI,
    logs: kind.startsWith('claim') ? [{ address: '0x', topics: [TOPICS.claimed], data: '0x', logIndex: 0 }] : [],
    ...o,
  };
}

const log = createLogger('t', { write: () => {} });

test('what bought nothing: reverted, noop fills, claims that won no activity', () => {
  expect(wastedReceipt(receipt('complete', 1n))).toBe(false);
  expect(wastedReceipt(receipt('claim_batch', 1n))).toBe(false);
  expect(wastedReceipt(receipt('claim_batch', 1n, { logs: [] }))).toBe(true);
  expect(wastedReceipt(receipt('heartbeat', 1n, { status: 'reverted' }))).toBe(true);
  expect(wastedReceipt(receipt('noop', 1n))).toBe(true);
});

test('the ledger: rates over the covered time, per completed activity, wasted share, runway; it survives a reopen', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'wcp-spend-')), 'wcp.db');
  let store = openStore({ path, logger: log });
  const metrics = createMetrics();
  let t = 1_800_000_000_000;
  const start = t;
  const ledger = createSpendLedger({ store, metrics, log, now: () => t });
  await ledger.load();
  expect(ledger.summary(10n ** 18n).runway).toEqual({
    balance_eth: 1,
    eth_per_hour: null,
    rate_window: null,
    hours: null,
  });
  // 30 min after start: a claim (won), two completes, a reverted heartbeat. Each at 10 gwei.
  t += 30 * 60_000;
  ledger.record(receipt('claim_batch', 100_000n));
  ledger.record(receipt('complete', 200_000n));
  ledger.record(receipt('complete', 200_000n, { activityIds: ['2'] }));
  ledger.record(receipt('heartbeat', 100_000n, { status: 'reverted' }));
  await store.flushed();
  const s = ledger.summary(6n * 10n ** 15n); // 0.006 ETH
  const weiTotal = 600_000n * 10n * GWEI; // 0.006 ETH
  expect(s.last_hour).toMatchObject({
    covered_s: 1800,
    txs: 4,
    gas: '600000',
    wei: weiTotal.toString(),
    completed: 2,
    gas_per_completed: 300_000,
    wasted_share: 1 / 6,
  });
  expect(s.last_hour.eth_per_hour).toBeCloseTo(0.012, 12); // 0.006 ETH over half an hour
  expect(s.last_hour.eth_per_completed).toBeCloseTo(0.003, 12);
  expect(s.runway).toMatchObject({ rate_window: '1h', balance_eth: 0.006 });
  expect(s.runway.hours).toBeCloseTo(0.5, 9);
  const prom = await metrics.registry.getSingleMetricAsString('wcp_spend_wei_total');
  expect(prom).toContain('wcp_spend_wei_total{kind="complete"} 4000000000000000');

  // Two hours later nothing new: the last hour is empty, the runway uses the 24 h rate (since start: 2.5 h).
  t += 2 * HOUR;
  const later = ledger.summary(6n * 10n ** 15n);
  expect(later.last_hour.txs).toBe(0);
  expect(later.last_24h.covered_s).toBe(2.5 * 3600);
  expect(later.runway.rate_window).toBe('24h');
  expect(later.runway.hours).toBeCloseTo(2.5, 9);

  // A restart: the same figures from the store, the same time base.
  await store.close();
  store = openStore({ path, logger: log });
  const again = createSpendLedger({ store, metrics: createMetrics(), log, now: () => t });
  await again.load();
  expect(again.summary(6n * 10n ** 15n)).toEqual(later);
  expect(again.summary(0n).since_ms).toBe(start);

  // Past the kept window the buckets go (bounded store), at the next receipt or start.
  t += SPEND_KEEP_MS;
  again.record(receipt('complete', 1n));
  await store.flushed();
  await new Promise((r) => setTimeout(r, 50));
  expect(store.count(PREFIX.spend)).toBe(1);
  expect(again.summary(0n).last_24h.txs).toBe(1);
  await store.close();
});
