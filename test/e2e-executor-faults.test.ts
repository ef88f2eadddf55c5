/**
 * Issue 4, done-when #2 and #5, with the compiled binary against executor processes:
 * - the executor is SIGKILLed mid-task and restarted on the same port: its lost tasks are re-offered and complete
 *   once on chain (default), or are failed on chain with `executor.reoffer_lost_tasks = false`; nothing is lost;
 * - the executor is frozen with SIGSTOP: wcp's keepalive notices within the configured time, reconnects after
 *   SIGCONT, and the task (still held by the executor) completes once, without being run again;
 * - an executor speaking TaskStream v2 gets one clear EXECUTOR_PROTOCOL error and wcp keeps running.
 */
import { expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import {
  chainActivity,
  e2eSuite,
  enqueue,
  fixtureEvents,
  STATUS,
  startSlowExecutor,
  type World,
} from './e2e-executor-harness.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { scan } from './support/store.ts';
import { until } from './support/wait.ts';
import { logLines, type WcpProcess } from './support/wcp.ts';

let w: World;
const { track, run, box, slowSetup } = e2eSuite(5, (world) => {
  w = world;
});

const bridgeStates = (wcp: WcpProcess) => logLines(wcp).filter((l) => l.msg === 'Executor bridge state changed.');

async function killMidTask(reoffer: boolean) {
  const me = w.worker();
  const sb = box();
  let exec = track(await startSlowExecutor({ concurrency: 2, handlerMs: 4000 }));
  const port = exec.port;
  const ids = await enqueue(w, me.queue, 2, 'test.slow', 'json:{}');
  const wcp = run(
    sb,
    wcpEnv(
      me,
      executorSettings(port, w.api.grpcEndpoint),
      reoffer ? {} : { WCP__EXECUTOR__REOFFER_LOST_TASKS: 'false' },
    ),
  );

  await until(
    () => fixtureEvents(exec, 'start').length,
    (n) => n === 2,
    30_000,
    'both tasks running',
  );
  exec.proc.kill('SIGKILL');
  await exec.exited;
  await wcp.waitFor(/"state":"backoff"/, 10_000);

  exec = track(await startSlowExecutor({ port, concurrency: 2, handlerMs: 500 }));
  const done = await until(
    () => scan(sb, 'done:'),
    (r) => r.length === 2,
    40_000,
    'both activities done',
  );
  expect(done.map((d) => d.value.activity_id).sort()).toEqual([...ids].sort());
  expect(scan(sb, 'inflight:')).toEqual([]);
  const lines = logLines(wcp);
  for (const id of ids) {
    const a = await chainActivity(w, id);
    if (reoffer) {
      expect(done.find((d) => d.value.activity_id === id)?.value.outcome).toBe('completed');
      expect(a.status).toBe(STATUS.completed);
      expect(a.resultRef).toBe(`json:{"result":"blob:${id}/result.txt"}`);
      // Re-offered once to the new executor (attempt 2) and completed once.
      expect(
        fixtureEvents(exec, 'start')
          .filter((e) => e.activity_id === id)
          .map((e) => e.attempt),
      ).toEqual([2]);
      expect(
        lines.filter((l) => l.msg === 'executor lost the task; re-dispatching' && l.activity_id === id),
      ).toHaveLength(1);
      expect(lines.filter((l) => l.msg === 'complete sent' && l.activity_id === id)).toHaveLength(1);
      expect(existsSync(w.api.blobPath(id, 'result.txt'))).toBe(true);
    } else {
      expect(done.find((d) => d.value.activity_id === id)?.value.outcome).toBe('failed');
      expect(a.status).toBe(STATUS.failed);
      expect(a.resultRef).toContain('EXECUTOR_LOST');
      expect(lines.filter((l) => l.msg === 'fail sent' && l.activity_id === id)).toHaveLength(1);
    }
  }
  if (!reoffer) expect(fixtureEvents(exec, 'start')).toEqual([]);
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}

test('SIGKILLed executor, restarted: lost tasks are re-offered and complete once on chain', async () => {
  await killMidTask(true);
}, 90_000);

test('SIGKILLed executor with reoffer_lost_tasks=false: lost tasks are failed on chain', async () => {
  await killMidTask(false);
}, 90_000);

async function frozenExecutor(handlerMs: number, frozenMs: number) {
  const { sb, exec, id, env } = await slowSetup({ executor: { concurrency: 1, handlerMs } });
  const wcp = run(sb, env);
  await until(
    () => fixtureEvents(exec, 'start').length,
    (n) => n === 1,
    30_000,
    'the task running',
  );
  await wcp.waitFor(/"msg":"activity assigned to executor"/);

  const frozenAt = Date.now();
  process.kill(exec.proc.pid ?? -1, 'SIGSTOP');
  // keepalive_interval 500ms + keepalive_timeout 1500ms; the bridge ticks every ~125 ms.
  const noticed = await until(
    () =>
      bridgeStates(wcp).find(
        (l) => l.state === 'backoff' && String(l.detail).includes('keepalive') && Date.parse(String(l.ts)) >= frozenAt,
      ),
    (l) => l !== undefined,
    10_000,
    'a keepalive timeout',
  );
  const noticedAfter = Date.parse(String(noticed?.ts)) - frozenAt;
  expect(noticedAfter).toBeLessThanOrEqual(500 + 1500 + 1000);
  await Bun.sleep(Math.max(0, frozenMs - (Date.now() - frozenAt)));
  process.kill(exec.proc.pid ?? -1, 'SIGCONT');

  const done = await until(
    () => scan(sb, 'done:'),
    (r) => r.length === 1,
    40_000,
    'the activity done',
  );
  expect(done[0]?.value).toMatchObject({ activity_id: id, outcome: 'completed' });
  const a = await chainActivity(w, id ?? '');
  expect(a.status).toBe(STATUS.completed);
  // Reconnected after the thaw; the executor still held the task: it ran once and was not re-offered.
  const states = bridgeStates(wcp);
  expect(states.filter((l) => l.state === 'ready').length).toBeGreaterThanOrEqual(2);
  expect(fixtureEvents(exec, 'start').map((e) => e.activity_id)).toEqual([id]);
  const lines = logLines(wcp);
  expect(lines.filter((l) => l.msg === 'executor lost the task; re-dispatching')).toEqual([]);
  expect(lines.filter((l) => l.msg === 'complete sent' && l.activity_id === id)).toHaveLength(1);
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}

test('a frozen executor (SIGSTOP) is noticed by the keepalive; after SIGCONT wcp reconnects and the task completes once', async () => {
  // The handler outlives the freeze: it finishes on the new stream.
  await frozenExecutor(9000, 3500);
}, 90_000);

test('a task that finishes while its executor is frozen is not lost or run twice', async () => {
  // The handler's timer fires at the thaw, before the executor has read that wcp dropped the old stream.
  await frozenExecutor(2500, 4000);
}, 90_000);

test('a protocol-version mismatch is one clear EXECUTOR_PROTOCOL error; wcp keeps running and claims nothing', async () => {
  const { sb, exec, id, env } = await slowSetup({ executor: { protocolVersion: 2 } });
  const wcp = run(sb, env);
  await wcp.waitFor(/EXECUTOR_PROTOCOL/, 20_000);
  // Several redials later (backoff 100–500 ms), still one error line.
  await until(
    () => bridgeStates(wcp).filter((l) => l.state === 'handshaking').length,
    (n) => n >= 4,
    20_000,
    'redials',
  );
  const errors = logLines(wcp).filter((l) => l.level === 'error');
  expect(errors).toHaveLength(1);
  expect(errors[0]?.code).toBe('EXECUTOR_PROTOCOL');
  expect(String(errors[0]?.msg)).toContain('speaks v2, this wcp speaks v1');
  expect(wcp.proc.exitCode).toBeNull();
  // Nothing can run it, so nothing is claimed (no gas, no heartbeats): the claim waits, the reason is logged.
  expect(fixtureEvents(exec, 'start')).toEqual([]);
  expect(scan(sb, 'done:')).toEqual([]);
  expect(scan(sb, 'inflight:')).toEqual([]);
  expect(scan(sb, 'claim_job:').map((r) => r.value.activity_id)).toEqual([id]);
  expect((await chainActivity(w, id ?? '')).status).toBe(STATUS.pending);
  expect(
    logLines(wcp)
      .filter((l) => l.msg === 'claims paused')
      .map((l) => l.reason),
  ).toEqual(['executor_not_ready']);
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 60_000);
