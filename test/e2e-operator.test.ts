/**
 * The operator's surface (issue 10) with the compiled binary on anvil and the SDK executor: `/readyz` is 503 naming
 * the executor while none runs and 200 once all is well; `/status` shows held activities per state and the lane;
 * a second `wcp run` on the same store exits with code 11 within 2 s while the first keeps working; a transaction
 * from the wallet that wcp did not send pauses claims (until the lane re-syncs) and says so; at balance 0 `/readyz` names the wallet; SIGHUP
 * drains and exits 0. The status page (issue 23) in a real headless Chromium: its counts are `/status`'s, it follows
 * an activity to completion without a reload, its runway is the balance over the spend the chain's receipts show,
 * and an executor's hostile error text is shown as text and runs nothing; a screenshot goes to test-artifacts/.
 */
import { expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import type { Page } from 'puppeteer-core';
import { freePort } from '../scripts/lib/anvil.ts';
import { e2eSuite, enqueue, startSlowExecutor, type World } from './e2e-executor-harness.ts';
import { launchChromium } from './support/browser.ts';
import { rpcBatch, walletTxs } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { until } from './support/wait.ts';
import { linesWith, logLines, ROOT, runWcp, startWcp } from './support/wcp.ts';

let w: World;
const { track, run, box } = e2eSuite(2, (world) => {
  w = world;
});

interface Ready {
  ready: boolean;
  failing: string[];
  checks: Array<{ name: string; ok: boolean; detail: string; fix?: string }>;
}

async function get(port: number, path: string): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3_000) });
    return { code: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return { code: 0, body: {} };
  }
}

test('readyz, status, one daemon per store, a foreign transaction, an empty wallet, SIGHUP', async () => {
  const me = w.worker();
  const sb = box();
  const metricsPort = await freePort();
  const execPort = await freePort();
  const env = wcpEnv(me, executorSettings(execPort, w.api.grpcEndpoint), {
    WCP__METRICS__ENABLED: 'true',
    WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}`,
    WCP__SCHEDULER__HEARTBEAT_INTERVAL: '2s',
    WCP__SHUTDOWN__DRAIN_TIMEOUT: '5s',
  });
  const wcp = run(sb, env);

  // No executor: not ready, and the executor check says so with its fix.
  const notReady = await until(
    async () => {
      const r = await get(metricsPort, '/readyz');
      const b = r.body as unknown as Ready;
      return r.code === 503 && b.failing?.includes('executor') && !b.failing.includes('funded') ? b : undefined;
    },
    (v) => Boolean(v),
    30_000,
    'readyz 503 naming only the executor',
  );
  expect(notReady?.checks.find((c) => c.name === 'executor')?.fix).toContain(`127.0.0.1:${execPort}`);
  expect((await get(metricsPort, '/healthz')).code).toBe(200);

  // Work (its queue becomes known to the TaskQueue: /readyz checks that too) and an executor: ready, and /status
  // shows what is held and the lane.
  const ids = await enqueue(w, me.queue, 6, 'test.slow', 'json:{}');
  track(await startSlowExecutor({ port: execPort, concurrency: 4, handlerMs: 4000 }));
  await until(
    async () => (await get(metricsPort, '/readyz')).code === 200,
    (v) => v,
    30_000,
    'readyz 200',
  );
  const status = await until(
    async () => {
      const s = (await get(metricsPort, '/status')).body as {
        lifecycle?: { held: Record<string, number> };
        lane?: { next_nonce: number };
      };
      const held = Object.values(s.lifecycle?.held ?? {}).reduce((a, b) => a + b, 0);
      // Held work, and the lane has sent its claim (a claim being prepared holds no nonce yet).
      return held > 0 && (s.lane?.next_nonce ?? 0) > 0 ? s : undefined;
    },
    (v) => Boolean(v),
    30_000,
    '/status shows held activities',
  );
  expect(status).toMatchObject({ state: 'running', lane: { state: 'running' }, store: { lane: {} } });
  expect((status as { lane: { next_nonce: number } }).lane.next_nonce).toBeGreaterThan(0);

  // A second daemon on the same store: refused at once with its own exit code, naming the first one's pid.
  const second = startWcp(sb, ['run'], env);
  const started = Date.now();
  const code = await second.exited;
  expect(Date.now() - started).toBeLessThan(2_000 + 3_000); // 2 s for wcp, a margin for process start on a busy box
  expect(code).toBe(11);
  expect(second.output()).toContain(`pid ${wcp.proc.pid}`);
  expect((await get(metricsPort, '/healthz')).code).toBe(200);

  // The same key used elsewhere: a transaction wcp did not send takes the nonce wcp is about to use.
  const key = new Wallet(me.privateKey);
  const [nonceHex, gasPriceHex] = await rpcBatch(w.anvil.url, [
    ['eth_getTransactionCount', [me.address, 'pending']],
    ['eth_gasPrice', []],
  ]);
  const raw = await key.signTransaction({
    type: 2,
    chainId: w.anvil.chainId,
    nonce: Number(nonceHex),
    to: me.address,
    value: 0n,
    gasLimit: 21_000n,
    maxFeePerGas: BigInt(gasPriceHex as string) * 10n,
    maxPriorityFeePerGas: BigInt(gasPriceHex as string) * 5n,
  });
  await rpcBatch(w.anvil.url, [['eth_sendRawTransaction', [raw]]]);
  await enqueue(w, me.queue, 2, 'test.slow', 'json:{}'); // more work: wcp sends with its next nonce
  await until(
    () => logLines(wcp).find((l) => l.msg.startsWith('a transaction from this wallet was not sent by this wcp')),
    (v) => Boolean(v),
    60_000,
    'the foreign transaction noticed',
  );
  // Claims pause only until the lane has moved past the used nonce (test/e2e-idling.test.ts follows it through);
  // /status keeps the last one seen.
  expect(linesWith(wcp, 'claims paused').some((l) => l.reason === 'foreign_transaction')).toBe(true);
  expect(
    String(((await get(metricsPort, '/status')).body as { foreign_transaction?: string }).foreign_transaction),
  ).toContain('wcp did not send');

  // An empty wallet: not ready, naming the wallet.
  await rpcBatch(w.anvil.url, [['anvil_setBalance', [me.address, '0x0']]]);
  const broke = await until(
    async () => {
      const r = await get(metricsPort, '/readyz');
      return (r.body as unknown as Ready).failing?.includes('funded') ? r : undefined;
    },
    (v) => Boolean(v),
    45_000,
    'readyz naming the wallet',
  );
  expect(broke?.code).toBe(503);
  expect(((broke?.body ?? {}) as unknown as Ready).checks?.find((c) => c.name === 'funded')?.fix).toContain(me.address);
  await rpcBatch(w.anvil.url, [['anvil_setBalance', [me.address, '0x56bc75e2d63100000']]]);

  // SIGHUP drains like SIGTERM: exit 0.
  wcp.proc.kill('SIGHUP');
  expect(await wcp.exited).toBe(0);
  expect(logLines(wcp).some((l) => l.msg === 'signal received: draining' && l.signal === 'SIGHUP')).toBe(true);
  expect(ids.length).toBe(6);
}, 300_000);

/** What the page shows: held activities per state and in total, and each recent activity's state cell. */
async function pageCounts(page: Page): Promise<{ byState: Record<string, number>; held: number }> {
  return (await page.evaluate(`(() => {
    const byState = {};
    for (const tr of document.querySelectorAll('#by-state tr')) byState[tr.dataset.state] = Number(tr.cells[1].textContent);
    return { byState, held: Number(document.getElementById('held-total').textContent) };
  })()`)) as { byState: Record<string, number>; held: number };
}

/** Browser-side code is passed as text: the test's TypeScript has no DOM types. */
const inPage = async <T>(page: Page, js: string): Promise<T> => (await page.evaluate(js)) as T;

const stateOnPage = (page: Page, id: string) =>
  inPage<string>(page, `document.querySelector('#recent tr[data-id="${id}"] td:nth-child(3)')?.textContent ?? ''`);

test('the status page in headless Chromium: counts, live updates, runway, hostile executor text', async () => {
  const me = w.worker();
  const sb = box();
  const metricsPort = await freePort();
  const execPort = await freePort();
  const hostile = '<img src=x onerror=window.__pwned=1></script><script>window.__pwned=2</script>';
  track(await startSlowExecutor({ port: execPort, concurrency: 4, handlerMs: 4000 }));
  const slow = await enqueue(w, me.queue, 2, 'test.slow', 'json:{}');
  const [bad] = await enqueue(w, me.queue, 1, 'test.slow', `json:${JSON.stringify({ fail: hostile })}`);
  const base = `http://127.0.0.1:${metricsPort}`;
  const env = wcpEnv(me, executorSettings(execPort, w.api.grpcEndpoint), {
    WCP__METRICS__ENABLED: 'true',
    WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}`,
  });
  const wcp = run(sb, env);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 1000 });
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    await until(
      async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok,
      (v) => Boolean(v),
      30_000,
      'the operator listener',
    );
    const res = await page.goto(`${base}/`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(res?.headers()['x-content-type-options']).toBe('nosniff');
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
    // A marker that a reload would wipe: every later update must come without one.
    await inPage(page, 'window.__marker = 1');

    // Counts: while work is held, what the page shows is what /status says (read between two equal page reads).
    await until(
      async () => {
        const before = await pageCounts(page);
        const s = (await (await fetch(`${base}/status`)).json()) as {
          activities?: { held: number; by_state: Record<string, { count: number }> };
        };
        const after = await pageCounts(page);
        if (!s.activities) return undefined; // still starting
        const want = Object.fromEntries(Object.entries(s.activities.by_state).map(([k, v]) => [k, v.count]));
        return before.held > 0 &&
          JSON.stringify(before) === JSON.stringify(after) &&
          JSON.stringify(before.byState) === JSON.stringify(want) &&
          before.held === s.activities.held
          ? before
          : undefined;
      },
      (v) => Boolean(v),
      30_000,
      'page counts equal to /status while work is held',
      250,
    );

    // Live: the slow activities go from held to done:completed on the page, no reload.
    const first = slow[0] as string;
    const held = await stateOnPage(page, first);
    expect(held.startsWith('done:')).toBe(false);
    for (const id of slow)
      await until(
        () => stateOnPage(page, id),
        (t) => t === 'done:completed',
        45_000,
        `activity ${id} completed on the page`,
      );
    await until(
      () => stateOnPage(page, bad as string),
      (t) => t === 'done:failed',
      30_000,
      'the hostile one failed',
    );
    expect(await inPage(page, 'window.__marker')).toBe(1);
    // Readiness as /readyz says it, in words; nothing pauses claims now.
    expect(await inPage(page, "[...document.querySelectorAll('#checks li')].map((l) => l.dataset.check).join()")).toBe(
      ((await (await fetch(`${base}/readyz`)).json()) as { checks: Array<{ name: string }> }).checks
        .map((c) => c.name)
        .join(),
    );
    expect(await inPage(page, "document.getElementById('paused').textContent")).toBe('claims running');

    // The executor's hostile error text (and the hostile input ref) show as text and run nothing.
    const seen = await inPage<{ text: string; pwned: unknown; imgs: number }>(
      page,
      `({
        text: document.querySelector('#recent tr[data-id="${bad}"]')?.textContent ?? '',
        pwned: window.__pwned,
        imgs: document.querySelectorAll('main img, main script').length,
      })`,
    );
    expect(seen.text).toContain(`HANDLER_ERROR: ${hostile}`);
    expect(seen.pwned).toBeUndefined();
    expect(seen.imgs).toBe(0);
    expect(blocked).toEqual([]);

    // Runway: the page's balance is the chain's, its spend rate the wallet's receipts over the time recorded, and
    // its runway the one over the other.
    const chainSpend = async () =>
      ((await walletTxs(w.anvil.url, [me.address])).get(me.address.toLowerCase()) ?? []).reduce(
        (a, t) => a + t.gasUsed * t.effectiveGasPrice,
        0n,
      );
    const spent = await until(
      async () => {
        const s = (await (await fetch(`${base}/status`)).json()) as { spend: { last_hour: { wei: string } } };
        const onChain = await chainSpend();
        return onChain > 0n && BigInt(s.spend.last_hour.wei) === onChain ? onChain : undefined;
      },
      (v) => v !== undefined,
      30_000,
      'recorded spend equal to the receipts on chain',
    );
    const [balHex] = await rpcBatch(w.anvil.url, [['eth_getBalance', [me.address, 'latest']]]);
    const balanceEth = Number(BigInt(balHex as string)) / 1e18;
    await until(
      () => inPage<string>(page, "document.getElementById('balance').dataset.eth"),
      (v) => Number(v) === balanceEth,
      15_000,
      'the page showing the balance on chain',
    );
    const shown = await inPage<{ hours: number; text: string; rate: number; balance: number }>(
      page,
      `({
        hours: Number(document.getElementById('runway').dataset.hours),
        text: document.getElementById('runway').textContent,
        rate: Number(document.getElementById('rate').dataset.ethPerHour),
        balance: Number(document.getElementById('balance').dataset.eth),
      })`,
    );
    const s = (await (await fetch(`${base}/status`)).json()) as { spend: { last_hour: { covered_s: number } } };
    const rate = ((Number(spent) / 1e18) * 3600) / s.spend.last_hour.covered_s;
    expect(Math.abs(shown.rate - rate) / rate).toBeLessThan(0.1); // the page is up to 2 s behind /status
    expect(Math.abs(shown.hours - shown.balance / shown.rate) / shown.hours).toBeLessThan(1e-9);
    expect(shown.text).toBe(`${shown.hours.toFixed(1)} h`);
    expect(shown.balance).toBe(balanceEth);

    // `wcp status` prints the same summary as text, the hostile text as it is.
    const cli = runWcp(sb, ['status'], env);
    expect(cli.code).toBe(0);
    for (const section of ['Worker', 'Readiness', 'Spend', 'Chain', 'Nonce lane', 'Executors', 'Recent activities'])
      expect(cli.stdout).toContain(`\n${section}`);
    expect(cli.stdout).toContain('Activities by state (held 0)');
    expect(cli.stdout).toContain(`reason: HANDLER_ERROR: ${hostile}`);
    expect(cli.stdout).toMatch(/runway {2,}\d+\.\d h \(≈ [\d.]+ days\) at the last hour's rate/);

    const dir = join(ROOT, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'status-page.png'), fullPage: true });
  } finally {
    await browser.close();
  }
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 120_000);
