import { expect, test } from 'bun:test';
import { pausesInWords } from '../supervisor/status-view.ts';
import { statusText, TEXT_LIST_MAX } from './status-text.ts';

const body = {
  source: 'daemon at 127.0.0.1:9464',
  state: 'running',
  worker: {
    address: '0xabc',
    registered: true,
    balance_eth: 2,
    version: '1.0',
    commit: 'c0',
    runtime: 'bun 1',
    uptime_s: 4000,
  },
  readiness: {
    ready: false,
    checks: [
      { name: 'chain', ok: true, detail: '1/1 endpoint(s)' },
      { name: 'executor', ok: false, detail: 'no executor connected', fix: 'start it' },
    ],
    claims_paused: pausesInWords({ executor_not_ready: { endpoint: '127.0.0.1:7070' } }),
  },
  spend: {
    last_hour: {
      eth: 0.5,
      eth_per_hour: 0.5,
      txs: 3,
      completed: 1,
      gas_per_completed: 100,
      eth_per_completed: 0.5,
      wasted_share: 0.25,
    },
    last_24h: {
      eth: 1,
      eth_per_hour: 0.1,
      txs: 9,
      completed: 2,
      gas_per_completed: 90,
      eth_per_completed: 0.5,
      wasted_share: 0.1,
    },
    runway: { hours: 4, eth_per_hour: 0.5, rate_window: '1h', balance_eth: 2 },
  },
  chain: { head: 9, endpoints: [{ url: '#0 http://n:8545', lastBlock: 9, lagBlocks: 0, up: true }], ws: null },
  lane: {
    state: 'running',
    next_nonce: 5,
    in_flight: 1,
    pending: [{ nonce: 4, kind: 'claim', state: 'sent', age_s: 30, bumps: 2, hash: '0x1' }],
    oldest_stuck: { nonce: 4, kind: 'claim', age_s: 30, bumps: 2 },
  },
  executors: [{ endpoint: '127.0.0.1:7070', connected: false, types: [], credits: 0, running: 0 }],
  activities: {
    held: 2,
    by_state: { running: { count: 2, oldest_age_s: 75 } },
    recent: Array.from({ length: 12 }, (_, i) => ({
      id: String(i),
      type: 't',
      state: 'done:failed',
      attempts: 1,
      executor: 'x',
      txs: [],
      states: [{ state: 'claiming', for_s: 1 }],
      reason: i === 0 ? 'bad \u001b[31mred\u001b[0m\nnext' : null,
    })),
  },
  recent_problems: [{ ts: 't', level: 'warn', tag: 'wcp', msg: 'm', fields: { a: 1 } }],
};

test('wcp status as text: the page sections, pauses in words, runway, lists cut, control characters replaced', () => {
  const text = statusText(body);
  for (const s of ['Worker', 'Readiness', 'Claims: PAUSED', 'Spend', 'Chain', 'Nonce lane', 'Executors'])
    expect(text).toContain(`\n${s}`);
  expect(text).toContain("runway      4.0 h (≈ 0.2 days) at the last hour's rate  ← below 24 h");
  expect(text).toContain('✗ executor: no executor connected (fix: start it)');
  expect(text).toContain(
    'paused (executor_not_ready): no executor is connected and handshaken · endpoint=127.0.0.1:7070',
  );
  expect(text).toContain('oldest stuck nonce 4 (claim), 30 s, 2 bumps');
  expect(text).toContain('Activities by state (held 2)\n  running  2  oldest 1 m 15 s');
  expect(text).toContain(`Recent activities (${TEXT_LIST_MAX} of 12; --json for all activities)`);
  expect(text).toContain('reason: bad ?[31mred?[0m next');
  expect(text).not.toContain('\u001b');
  expect(text).toContain('wasted share          25.00 %');
});
