/**
 * Issue 4, done-when #3 and #6, with the compiled binary against the slow test executor:
 * - backpressure: the executor never holds more tasks than its credits, wcp never holds more than
 *   `scheduler.max_inflight` activities, and the rest wait as unclaimed `claim_job:` records;
 * - SIGTERM drains: no new claims after the signal, running tasks finish and are completed on chain, exit 0;
 *   with a drain timeout shorter than the task, the activity stays recorded and a restart finishes it.
 */
import { expect, test } from 'bun:test';
import { chainActivity, e2eSuite, enqueue, fixtureEvents, STATUS, type World } from './e2e-executor-harness.ts';
import { scan } from './support/store.ts';
import { until } from './support/wait.ts';
import { logLines } from './support/wcp.ts';

let w: World;
const { run, slowSetup } = e2eSuite(3, (world) => {
  w = world;
});

test('a slow executor backs pressure up to the poller: credits and max_inflight hold, the rest wait unclaimed', async () => {
  const { sb, exec, ids, env } = await slowSetup({
    executor: { concurrency: 2, handlerMs: 500 },
    count: 20,
    extra: { WCP__SCHEDULER__MAX_INFLIGHT: '4' },
  });
  const wcp = run(sb, env);

  let maxInflight = 0;
  let maxClaimedOnChain = 0;
  let sawBackpressure = false;
  const unclaimedJobs: string[] = [];
  const giveUpAt = Date.now() + 90_000;
  for (;;) {
    // Chain first, then the store: an id still a claim job afterwards was not claimed when the chain was read.
    const chain = await Promise.all(ids.map((id) => chainActivity(w, id)));
    const inflight = scan(sb, 'inflight:');
    const jobs = scan(sb, 'claim_job:');
    const done = scan(sb, 'done:');
    maxInflight = Math.max(maxInflight, inflight.length);
    maxClaimedOnChain = Math.max(maxClaimedOnChain, chain.filter((a) => a.status === STATUS.claimed).length);
    for (const j of jobs) {
      const i = ids.indexOf(String(j.value.activity_id));
      expect(i).toBeGreaterThanOrEqual(0);
      expect(chain[i]?.status).toBe(STATUS.pending);
      unclaimedJobs.push(String(j.value.activity_id));
    }
    // Claims stop at what the executor can run now (its 2 credits; issue 9's claim gate), before max_inflight.
    if (inflight.length >= 2 && jobs.length > 0) sawBackpressure = true;
    if (done.length === 20) break;
    if (wcp.proc.exitCode !== null) throw new Error(`wcp exited:\n${wcp.output().slice(-3000)}`);
    if (Date.now() > giveUpAt)
      throw new Error(`not done after 90 s (${done.length}/20 done):\n${wcp.output().slice(-6000)}`);
    await Bun.sleep(200);
  }
  expect(maxInflight).toBeLessThanOrEqual(4);
  expect(maxClaimedOnChain).toBeLessThanOrEqual(4);
  expect(sawBackpressure).toBe(true);
  expect(new Set(unclaimedJobs).size).toBeGreaterThan(4);

  // The executor never ran more than its 2 slots and never had to refuse an assignment for lack of them.
  const starts = fixtureEvents(exec, 'start');
  expect(Math.max(...starts.map((e) => Number(e.peak)))).toBe(2);
  expect(starts.map((e) => e.activity_id).sort()).toEqual([...ids].sort());
  expect(starts.every((e) => e.attempt === 1)).toBe(true);
  const lines = logLines(wcp);
  expect(lines.filter((l) => l.msg === 'executor failed activity (retryable); re-offering')).toEqual([]);

  const done = scan(sb, 'done:');
  expect(done.every((d) => d.value.outcome === 'completed')).toBe(true);
  for (const id of ids) expect((await chainActivity(w, id)).status).toBe(STATUS.completed);
  expect(scan(sb, 'inflight:')).toEqual([]);
  expect(scan(sb, 'claim_job:')).toEqual([]);
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 120_000);

test('SIGTERM with tasks running: no new claims, running tasks finish and complete on chain, exit 0', async () => {
  const {
    me,
    sb,
    exec,
    ids: first,
    env,
  } = await slowSetup({
    executor: { concurrency: 2, handlerMs: 3000 },
    count: 2,
    extra: {
      WCP__SCHEDULER__MAX_INFLIGHT: '2',
      WCP__SHUTDOWN__DRAIN_TIMEOUT: '20s',
    },
  });
  const wcp = run(sb, env);
  await until(
    () => fixtureEvents(exec, 'start').length,
    (n) => n === 2,
    30_000,
    'two tasks running',
  );
  // More work arrives while wcp is full; it is recorded, not claimed.
  const later = await enqueue(w, me.queue, 2, 'test.slow', 'json:{}');
  await until(
    () => scan(sb, 'claim_job:').length,
    (n) => n === 2,
    20_000,
    'two claim jobs',
  );

  const signalledAt = Date.now();
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
  expect(Date.now() - signalledAt).toBeLessThan(20_000);

  const lines = logLines(wcp);
  const drainAt = lines.findIndex((l) => l.msg === 'supervisor draining');
  expect(drainAt).toBeGreaterThan(0);
  expect(
    lines.slice(drainAt).filter((l) => l.msg === 'claim sent' || l.msg === 'activity assigned to executor'),
  ).toEqual([]);
  expect(lines.some((l) => l.msg === 'drained: nothing in flight')).toBe(true);

  const done = scan(sb, 'done:');
  expect(done.map((d) => d.value.activity_id).sort()).toEqual([...first].sort());
  expect(done.every((d) => d.value.outcome === 'completed')).toBe(true);
  for (const id of first) expect((await chainActivity(w, id)).status).toBe(STATUS.completed);
  for (const id of later) expect((await chainActivity(w, id)).status).toBe(STATUS.pending);
  expect(
    scan(sb, 'claim_job:')
      .map((j) => j.value.activity_id)
      .sort(),
  ).toEqual([...later].sort());
  expect(scan(sb, 'inflight:')).toEqual([]);
  expect(fixtureEvents(exec, 'end').filter((e) => e.ok === true)).toHaveLength(2);
}, 90_000);

test('SIGTERM with a task longer than the drain timeout: exit 0, the task stays recorded, a restart finishes it', async () => {
  const { sb, exec, id, env } = await slowSetup({
    executor: { concurrency: 2, handlerMs: 10_000 },
    extra: { WCP__SHUTDOWN__DRAIN_TIMEOUT: '1s' },
  });
  const wcp = run(sb, env);
  await until(
    () => fixtureEvents(exec, 'start').length,
    (n) => n === 1,
    30_000,
    'the task running',
  );
  await wcp.waitFor(/"msg":"activity assigned to executor"/);

  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
  const unfinished = logLines(wcp).find(
    (l) => l.msg === 'stopping with activities not finished; they stay recorded and resume after restart',
  );
  expect(String(unfinished?.activities)).toContain(`${id}:`);
  const held = scan(sb, 'inflight:');
  expect(held.map((r) => r.value.activity_id)).toEqual([id]);
  expect(['assigned', 'running']).toContain(String(held[0]?.value.state));
  expect(scan(sb, 'done:')).toEqual([]);
  expect((await chainActivity(w, id ?? '')).status).toBe(STATUS.claimed);

  // The executor kept running the task; the restarted wcp picks it up and completes it.
  const again = run(sb, env);
  const done = await until(
    () => scan(sb, 'done:'),
    (r) => r.length === 1,
    40_000,
    'the activity done after restart',
  );
  expect(done[0]?.value).toMatchObject({ activity_id: id, outcome: 'completed' });
  const a = await chainActivity(w, id ?? '');
  expect(a.status).toBe(STATUS.completed);
  expect(a.resultRef).toBe(`json:{"result":"blob:${id}/result.txt"}`);
  expect(fixtureEvents(exec, 'start').map((e) => e.activity_id)).toEqual([id]);
  expect(scan(sb, 'inflight:')).toEqual([]);
  again.proc.kill('SIGTERM');
  expect(await again.exited).toBe(0);
}, 90_000);
