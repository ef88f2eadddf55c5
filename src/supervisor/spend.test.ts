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
import { completedBy, createSpendLedger, SPEND_KEEP_MS, wastedReceipt } from './spend.ts';
import { batchExecutorIface } from '../chain/batch-executor.ts';

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
const WALLET = '0x00000000000000000000000000000000000000cc';

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
  const ledger = createSpendLedger({ store, metrics, log, wallet: WALLET, now: () => t });
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
  const again = createSpendLedger({ store, metrics: createMetrics(), log, wallet: WALLET, now: () => t });
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

test('a batch completes the ids of its complete calls the executor did not report failed', () => {
  const fail = batchExecutorIface.encodeEventLog(batchExecutorIface.getEvent('ERC7579TryExecuteFail') as never, [
    1,
    '0x',
  ]);
  const ev = receipt('batch', 300_000n, {
    calls: [
      { kind: 'complete', activity_ids: ['1'] },
      { kind: 'complete', activity_ids: ['2'] },
      { kind: 'resume', activity_ids: ['1'] },
      { kind: 'complete', activity_ids: ['3'] },
    ],
    logs: [{ address: WALLET, topics: fail.topics, data: fail.data, logIndex: 0 }],
  });
  expect(completedBy(ev, WALLET)).toBe(2);
  // Another contract's event of the same shape is not the wallet's.
  expect(
    completedBy({ ...ev, logs: [{ ...ev.logs[0]!, address: '0x00000000000000000000000000000000000000dd' }] }, WALLET),
  ).toBe(3);
  expect(completedBy({ ...ev, status: 'reverted' }, WALLET)).toBe(0);
});

test('after a restart, a receipt in the minute of a bucket read back from the store is added to it', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'wcp-spend-')), 'wcp.db');
  let store = openStore({ path, logger: log });
  const t = 1_800_000_000_000;
  const one = createSpendLedger({ store, metrics: createMetrics(), log, wallet: WALLET, now: () => t });
  await one.load();
  one.record(receipt('complete', 100_000n));
  await store.flushed();
  await new Promise((r) => setTimeout(r, 50));
  await store.close();
  store = openStore({ path, logger: log });
  const two = createSpendLedger({ store, metrics: createMetrics(), log, wallet: WALLET, now: () => t });
  await two.load();
  two.record(receipt('complete', 100_000n));
  expect(two.summary(0n).last_hour).toMatchObject({ txs: 2, completed: 2 });
  await store.close();
});
