/**
 * Issue 14: every Completion the executor delivers reaches the chain. The compiled binary, the SDK-based slow
 * executor (test/fixtures/slow-executor.ts, 100 ms handler, concurrency 16 — `WCP_E2E_EXEC_CONCURRENCY` overrides),
 * `scheduler.max_inflight` 64 and a 1 s heartbeat interval run 200 single-step activities on anvil. Checked on
 * chain: each is completed exactly once (one ActivityCompleted, nothing failed), and no heartbeat of wcp names an
 * activity after its complete was mined (wcp's transactions are mined in nonce order: a heartbeat tx that comes
 * after the complete tx names an activity already finished — paid for, skipped on chain).
 * The fixture reports progress right before it returns, so a Progress and its Completion reach wcp back to back:
 * the case that used to strand activities heartbeated in `running`.
 */
import { expect, test } from 'bun:test';
import { e2eSuite, enqueue, fixtureEvents, startSlowExecutor, type World } from './e2e-executor-harness.ts';
import { decodedCalls, queueEvents, walletTxs } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { scan } from './support/store.ts';
import { until } from './support/wait.ts';
import { assertRunning, linesWith } from './support/wcp.ts';

const COUNT = Number(process.env.WCP_E2E_COUNT ?? 200);
const CONCURRENCY = Number(process.env.WCP_E2E_EXEC_CONCURRENCY ?? 16);

let w: World;
const { track, run, box } = e2eSuite(1, (world) => {
  w = world;
});

test(`${COUNT} activities through a real executor at concurrency ${CONCURRENCY}: each completed on chain exactly once, no heartbeat after`, async () => {
  const me = w.worker();
  const sb = box();
  const exec = track(await startSlowExecutor({ concurrency: CONCURRENCY, handlerMs: 100 }));
  const tq = w.stack.contracts.taskQueue;
  const taskQueue = (await tq.getAddress()).toLowerCase();
  const fromBlock = await w.anvil.blockNumber();
  const ids = await enqueue(w, me.queue, COUNT, 'test.slow', 'json:{}');
  const wcp = run(
    sb,
    wcpEnv(me, executorSettings(exec.port, w.api.grpcEndpoint), {
      WCP__SCHEDULER__MAX_INFLIGHT: '64',
      WCP__SCHEDULER__HEARTBEAT_INTERVAL: '1s',
    }),
  );

  // Done when every activity left the store; a stranded one stays in `inflight:` (heartbeated) until we give up.
  const state = await until(
    () => {
      assertRunning(wcp);
      return {
        done: scan(sb, 'done:').length,
        held: scan(sb, 'inflight:').map((r) => `${r.value.activity_id}:${r.value.state}`),
      };
    },
    (s) => s.done === COUNT,
    150_000,
    `${COUNT} activities done`,
  ).catch((e: Error) => {
    const ended = new Set(
      fixtureEvents(exec, 'end')
        .filter((e) => e.ok === true)
        .map((e) => String(e.activity_id)),
    );
    for (const r of scan(sb, 'inflight:').slice(0, 10)) {
      const id = String(r.value.activity_id);
      console.log(`stranded ${id}: ${JSON.stringify(r.value)}; executor finished it: ${ended.has(id)}`);
    }
    throw e;
  });
  expect(state.held).toEqual([]);

  // On chain: exactly one ActivityCompleted per activity, none failed.
  const events = (await queueEvents(me.rpcUrl, taskQueue, fromBlock)).filter((e) => ids.includes(e.activityId));
  const completions = new Map<string, number>();
  for (const e of events.filter((e) => e.name === 'ActivityCompleted'))
    completions.set(e.activityId, (completions.get(e.activityId) ?? 0) + 1);
  expect(events.filter((e) => e.name === 'ActivityFailed').map((e) => e.activityId)).toEqual([]);
  expect(ids.filter((id) => completions.get(id) !== 1)).toEqual([]);

  // No heartbeat after completion: walking wcp's mined transactions in order, a heartbeat naming an activity
  // whose complete was already mined is late.
  const txs = (await walletTxs(me.rpcUrl, [me.address])).get(me.address.toLowerCase()) ?? [];
  const completed = new Set<string>();
  const late: string[] = [];
  let heartbeatTxs = 0;
  for (const call of decodedCalls(txs)) {
    if (call.to !== taskQueue || call.blockNumber < fromBlock) continue;
    if (call.fn === 'completeActivity' && call.ok) for (const id of call.ids) completed.add(id);
    if (call.fn === 'heartbeatBatch' || call.fn === 'heartbeat') {
      heartbeatTxs += 1;
      for (const id of call.ids) if (completed.has(id)) late.push(`${id}@${call.blockNumber}`);
    }
  }
  const assigns = linesWith(wcp, 'activity assigned to executor');
  const kept = linesWith(wcp, 'completion for an activity not held (yet); kept for the re-check');
  console.log(
    `[completions] ${COUNT} done; ${heartbeatTxs} heartbeat txs; executor ran ${fixtureEvents(exec, 'start').length} tasks; ` +
      `${assigns.length} assignments; ${kept.length} completions kept for the re-check; ${late.length} late heartbeats: ${late.slice(0, 20).join(' ')}`,
  );
  // Each task ran once (nothing re-offered as a new run), and no completion waited for the re-check.
  expect(
    fixtureEvents(exec, 'start')
      .map((e) => String(e.activity_id))
      .sort(),
  ).toEqual([...ids].sort());
  expect(kept).toEqual([]);
  // No heartbeat follows a complete (one decided before the complete took its nonce is withdrawn at its turn).
  expect(late).toEqual([]);

  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 240_000);
