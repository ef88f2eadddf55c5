/**
 * Reconciler end to end, a misbehaving RPC (the compiled binary against anvil, through `support/rpc-proxy.ts`):
 *  - the RPC goes away mid-run while activities are being enqueued: wcp stays up, backs off, catches up and
 *    misses no ActivityEnqueued;
 *  - an RPC that refuses wide eth_getLogs ranges ("block range is too large", "query returned more than 10000
 *    results"): a start over thousands of blocks of history still finds every relevant event, no block skipped.
 * In both, the Poller is blinded (its pollActivity reads fail at the proxy), so new work can only be learned
 * from ActivityEnqueued events: the ingestion path under test.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import {
  deployStack,
  enqueueActivities,
  laneSigner,
  registerWorker,
  sendMany,
  type Stack,
} from '../scripts/lib/deploy.ts';
import { blindPoller } from './e2e-reconciler-lib.ts';
import { activityViews, blockNumber, queueEvents, tqIface } from './support/chain.ts';
import { RECONCILER_SETTINGS, wcpEnv } from './support/env.ts';
import { type RpcCall, type RpcProxy, startRpcProxy } from './support/rpc-proxy.ts';
import { doneById, inflightById } from './support/store.ts';
import { sleep, until, waitAllCompleted } from './support/wait.ts';
import { linesWith, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

let anvil: Anvil | undefined;
let stack: Stack | undefined;
let sb: Sandbox | undefined;
let proxy: RpcProxy | undefined;
const procs: WcpProcess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  await proxy?.close();
  stack?.destroy();
  await anvil?.stop();
  sb?.cleanup();
  anvil = undefined;
  stack = undefined;
  sb = undefined;
  proxy = undefined;
}, 60_000);

const hexNum = (x: unknown) => Number(BigInt(String(x)));

describe('wcp binary: reconciler under a misbehaving RPC', () => {
  // The 60 s outage. `reconciler.backoff_max` is lowered to 8 s (default 30 s) so that recovery after the
  // outage is noticed within one short backoff step and the test fits the suite's budget.
  const OUTAGE_MS = 60_000;
  const BACKOFF_MAX_MS = 8_000;

  test('RPC down mid-run while activities are enqueued: wcp stays up, backs off, catches up, misses no ActivityEnqueued', async () => {
    anvil = await startAnvil({ blockTime: 1 });
    // Heartbeat timeout longer than the outage: what is in flight when the RPC goes must survive it.
    stack = await deployStack({
      rpcUrl: anvil.url,
      deployerKey: anvil.accounts[0]!.privateKey,
      heartbeatTimeoutS: 120,
    });
    const me = anvil.accounts[1]!;
    await registerWorker(stack, me.address, 64);
    sb = sandbox();
    proxy = await startRpcProxy({ target: anvil.url });
    const blind = blindPoller(proxy);
    const env = wcpEnv({ rpcUrl: proxy.url, privateKey: me.privateKey }, RECONCILER_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '3s',
      WCP__RECONCILER__BACKOFF_MAX: `${BACKOFF_MAX_MS}ms`,
    });
    const w = startWcp(sb, ['run'], env);
    procs.push(w);
    await w.waitFor(/startup scan done; claims enabled/, 30_000);

    // Before: the event path works.
    const before = (await enqueueActivities(stack, { queue: 'default', count: 4 })).map(String);
    await waitAllCompleted(sb, stack, before, me.address, 30_000, w);
    // Mid-run: four more, claimed and executing when the RPC goes away.
    const inflight = (await enqueueActivities(stack, { queue: 'default', count: 4 })).map(String);
    await until(
      () => inflightById(sb as Sandbox),
      (m) => inflight.every((id) => ['assigned', 'running'].includes(String(m.get(id)?.state))),
      20_000,
      'mid-run activities executing',
    );

    await proxy.down();
    const outageStart = Date.now();
    const outageFrom = (await blockNumber(anvil.url)) + 1;
    const during: string[] = [];
    while (Date.now() - outageStart < OUTAGE_MS) {
      during.push(...(await enqueueActivities(stack, { queue: 'default', count: 2 })).map(String));
      await sleep(2_500);
      expect(w.proc.exitCode).toBeNull();
    }
    const outageTo = await blockNumber(anvil.url);
    await proxy.up();
    const upAt = Date.now();
    expect(during.length).toBeGreaterThanOrEqual(16);

    await waitAllCompleted(sb, stack, [...inflight, ...during], me.address, 60_000, w);
    const caughtUpMs = Date.now() - upAt;

    // wcp stayed up the whole time and is still running.
    expect(w.proc.exitCode).toBeNull();
    expect(w.output()).not.toContain('supervisor failed');
    expect(w.output()).not.toContain('worker task crashed');
    // It backed off: growing waits, one error report per outage (not one per retry), a handful of retries.
    const backoffs = linesWith(w, /^follow step failed; backing off$/).filter(
      (l) => Date.parse(String(l.ts)) <= upAt + 1_000,
    );
    expect(backoffs.length).toBeGreaterThanOrEqual(3);
    expect(backoffs.length).toBeLessThanOrEqual(20);
    const waits = backoffs.map((l) => Number(l.wait_ms));
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(BACKOFF_MAX_MS / 2);
    expect(Math.max(...waits)).toBeLessThanOrEqual(BACKOFF_MAX_MS);
    expect(backoffs.map((l) => Number(l.failures))).toEqual(backoffs.map((_, i) => i + 1));
    expect(linesWith(w, 'RPC recovered').length).toBeGreaterThanOrEqual(1);
    // Caught up: within the last backoff step (≤ 8 s) plus a claim/run/complete round.
    expect(caughtUpMs).toBeLessThan(40_000);

    // Every activity enqueued during the outage was learned from its ActivityEnqueued event (the Poller is
    // blind), claimed once by us and completed.
    expect(blind.hits).toBeGreaterThan(0);
    expect(linesWith(w, 'claim jobs recorded')).toEqual([]);
    const fromEvents = new Set(
      linesWith(w, 'claim jobs recorded from events').flatMap((l) => String(l.activity_ids).split(',')),
    );
    for (const id of during) expect(fromEvents.has(id)).toBe(true);
    const events = await queueEvents(anvil.url, stack.addresses.taskQueue);
    const enqueuedDuring = events.filter(
      (e) => e.name === 'ActivityEnqueued' && e.blockNumber >= outageFrom && e.blockNumber <= outageTo,
    );
    expect(enqueuedDuring.map((e) => e.activityId).sort()).toEqual([...during].sort());
    for (const id of [...before, ...inflight, ...during]) {
      const claims = events.filter((e) => e.activityId === id && e.name === 'ActivityClaimed');
      expect(claims.map((e) => e.worker)).toEqual([me.address.toLowerCase()]);
    }
    const done = doneById(sb);
    for (const id of [...before, ...inflight, ...during]) expect(done.get(id)?.outcome).toBe('completed');

    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  }, 200_000);

  test('eth_getLogs range and result-count errors above N blocks: a start over 3 000 blocks of history finds every relevant event', async () => {
    anvil = await startAnvil();
    stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
    const me = anvil.accounts[1]!;
    const other = anvil.accounts[2]!;
    await registerWorker(stack, me.address, 64);
    await registerWorker(stack, other.address, 64);
    const tq = stack.addresses.taskQueue;
    const mine = {
      provider: stack.provider,
      signer: laneSigner(me.privateKey, stack.provider),
      chainId: stack.chainId,
    };
    const theirs = {
      provider: stack.provider,
      signer: laneSigner(other.privateKey, stack.provider),
      chainId: stack.chainId,
    };
    const call = (fn: string, args: unknown[]) => ({
      to: tq,
      data: tqIface.encodeFunctionData(fn, args),
      gasLimit: 400_000n,
    });

    // History: 10 rounds, each with 4 activities and then 300 empty blocks.
    //   completed[] — claimed and completed by us (only events can find these: they left our active set)
    //   failed[]    — claimed and failed by us
    //   foreign[]   — claimed and completed by another worker (nothing of ours)
    //   pending[]   — never claimed: the follower must ingest their ActivityEnqueued from the history
    const completed: string[] = [];
    const failed: string[] = [];
    const foreign: string[] = [];
    const pending: string[] = [];
    for (let round = 0; round < 10; round++) {
      const [a, b, c, d] = (await enqueueActivities(stack, { queue: 'default', count: 4 })).map(String) as [
        string,
        string,
        string,
        string,
      ];
      await sendMany(mine, [call('claimActivity', [a]), call('claimActivity', [b])]);
      await sendMany(mine, [call('completeActivity', [a, `history:${a}`]), call('failActivity', [b, `broke:${b}`])]);
      await sendMany(theirs, [call('claimActivity', [c])]);
      await sendMany(theirs, [call('completeActivity', [c, `theirs:${c}`])]);
      completed.push(a);
      failed.push(b);
      foreign.push(c);
      pending.push(d);
      await anvil.mine(300);
    }
    // Live claims of ours, made just before the start (the wiped-store case: no local record of them).
    const live = (await enqueueActivities(stack, { queue: 'default', count: 3 })).map(String);
    await sendMany(
      mine,
      live.map((id) => call('claimActivity', [id])),
    );
    const head = await blockNumber(anvil.url);
    expect(head).toBeGreaterThan(3_000);

    // A provider that answers only ranges of ≤ 200 blocks: above 500 the range is refused, above 200 the
    // result is "too big" (whatever the logs, as a node with a response cap would say for a dense range).
    proxy = await startRpcProxy({ target: anvil.url });
    const span = (c: RpcCall) => {
      const f = (c.params?.[0] ?? {}) as { fromBlock?: string; toBlock?: string };
      return hexNum(f.toBlock) - hexNum(f.fromBlock) + 1;
    };
    const tooWide = proxy.addRule({
      name: 'range too large',
      match: (c) => c.method === 'eth_getLogs' && span(c) > 500,
      action: { type: 'error', code: -32602, message: 'block range is too large' },
    });
    const tooMany = proxy.addRule({
      name: 'too many results',
      match: (c) => c.method === 'eth_getLogs' && span(c) > 200,
      action: { type: 'error', code: -32005, message: 'query returned more than 10000 results' },
    });
    blindPoller(proxy);
    sb = sandbox();
    const env = wcpEnv({ rpcUrl: proxy.url, privateKey: me.privateKey }, RECONCILER_SETTINGS, {
      WCP__EXECUTOR__NOOP_DELAY: '500ms',
    });
    const w = startWcp(sb, ['run'], env);
    procs.push(w);
    const started = await w.waitFor(/startup scan done; claims enabled[^\n]*/, 60_000);
    expect(started).toBeTruthy();

    // Every activity of ours is rebuilt from the history, the live ones and the pending ones end completed.
    await waitAllCompleted(sb, stack, [...live, ...pending], me.address, 60_000, w);
    const done = doneById(sb);
    for (const id of completed) {
      expect(done.get(id)?.outcome).toBe('completed');
      expect(done.get(id)?.result_ref).toBe(`history:${id}`);
    }
    for (const id of failed) {
      expect(done.get(id)?.outcome).toBe('failed');
      expect(done.get(id)?.reason).toBe(`broke:${id}`);
    }
    for (const id of foreign) expect(done.has(id)).toBe(false);
    const views = await activityViews(stack, foreign);
    expect(views.every((v) => Number(v.status) === 3 && v.worker.toLowerCase() === other.address.toLowerCase())).toBe(
      true,
    );

    // The node's refusals were met, and the accepted queries tile the history with no block skipped.
    expect(tooWide.hits).toBeGreaterThan(0);
    expect(tooMany.hits).toBeGreaterThan(0);
    const accepted = proxy.calls('eth_getLogs').filter((c) => c.outcome === 'forwarded');
    expect(accepted.every((c) => span({ method: c.method, params: c.params }) <= 200)).toBe(true);
    const rangesOf = (topic0: (t: unknown) => boolean) =>
      accepted
        .filter((c) => topic0(((c.params[0] ?? {}) as { topics?: unknown[] }).topics?.[0]))
        .map((c) => {
          const f = c.params[0] as { fromBlock: string; toBlock: string };
          return [hexNum(f.fromBlock), hexNum(f.toBlock)] as const;
        });
    const enqueuedTopic = tqIface.getEvent('ActivityEnqueued')!.topicHash;
    const claimedTopic = tqIface.getEvent('ActivityClaimed')!.topicHash;
    // The startup scan (ActivityClaimed/Heartbeat/Completed/Failed of our wallet): exactly [0, head], in order.
    const scanRanges = rangesOf((t) => Array.isArray(t) && t.includes(claimedTopic));
    const scanLine = linesWith(w, 'reconciler scan').find((l) => l.reason === 'startup');
    expect(scanLine?.from_block).toBe(0);
    const scanTo = Number(scanLine?.to_block);
    expect(scanTo).toBeGreaterThanOrEqual(head);
    const startupRanges = scanRanges.slice(0, scanRanges.findIndex(([, to]) => to === scanTo) + 1);
    expect(startupRanges[0]?.[0]).toBe(0);
    startupRanges.forEach(([from], i) => {
      if (i > 0) expect(from).toBe((startupRanges[i - 1] as readonly [number, number])[1] + 1);
    });
    // The follower (ActivityEnqueued of our queue): from the window start on, no gap.
    const followRanges = rangesOf((t) => t === enqueuedTopic);
    expect(followRanges[0]?.[0]).toBe(0);
    let covered = -1;
    for (const [from, to] of followRanges) {
      expect(from).toBeLessThanOrEqual(covered + 1);
      covered = Math.max(covered, to);
    }
    expect(covered).toBeGreaterThanOrEqual(head);

    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  }, 150_000);
});
