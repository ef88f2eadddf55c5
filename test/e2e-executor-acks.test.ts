/**
 * Issue 9, the executor side end to end (the compiled binary, anvil, the dev subnet-api, the SDK fixture):
 * - kill -9 of wcp while the executor runs tasks that then finish with no wcp around — once with the store kept,
 *   once wiped: every finished task is taken from the executor's Resync/Completion and completes on chain once;
 *   none runs a second time;
 * - a success whose output object was never uploaded is refused (OUTPUT_INVALID), the executor is told, and the
 *   activity is re-dispatched, then failed on chain with the reason; no unchecked result reaches the chain.
 * Both need the lifecycle half (the supervisor's ackCompletion and its handling of completionRejected and of
 * completions from an earlier life) as well as the bridge's.
 */
import { expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { chainActivity, e2eSuite, fixtureEvents, STATUS, type World } from './e2e-executor-harness.ts';
import { scan } from './support/store.ts';
import { until } from './support/wait.ts';

let w: World;
const { run, slowSetup } = e2eSuite(3, (world) => {
  w = world;
});

async function killWcpWhileRunning(wipeStore: boolean) {
  const { sb, exec, ids, env } = await slowSetup({ executor: { concurrency: 3, handlerMs: 3000 }, count: 3 });
  const first = run(sb, env);
  await until(
    () => fixtureEvents(exec, 'start').length,
    (n) => n === 3,
    30_000,
    'all three tasks running',
  );
  first.proc.kill('SIGKILL');
  await first.exited;
  if (wipeStore) {
    rmSync(sb.dbPath, { force: true });
    rmSync(`${sb.dbPath}-lock`, { force: true });
  }
  // They finish while no wcp is there: the executor keeps their Completions.
  await until(
    () => fixtureEvents(exec, 'end').length,
    (n) => n === 3,
    30_000,
    'all three tasks finished',
  );

  const second = run(sb, env);
  const done = await until(
    () => scan(sb, 'done:'),
    (r) => r.length === 3,
    60_000,
    'all three activities done',
  );
  for (const id of ids) {
    expect(done.find((d) => d.value.activity_id === id)?.value.outcome).toBe('completed');
    const a = await chainActivity(w, id);
    expect(a.status).toBe(STATUS.completed);
    expect(a.resultRef).toBe(`json:{"result":"blob:${id}/result.txt"}`);
    expect(fixtureEvents(exec, 'start').filter((e) => e.activity_id === id)).toHaveLength(1);
  }
  second.proc.kill('SIGTERM');
  expect(await second.exited).toBe(0);
}

test('kill -9 of wcp with the store kept: finished tasks are taken from the executor, none runs twice', async () => {
  await killWcpWhileRunning(false);
}, 120_000);

test('kill -9 of wcp with the store wiped: finished tasks are taken from the executor, none runs twice', async () => {
  await killWcpWhileRunning(true);
}, 120_000);

test('an output never uploaded: OUTPUT_INVALID, the executor told, re-dispatched, then failed on chain', async () => {
  const { sb, exec, id, env } = await slowSetup({
    executor: { concurrency: 1, handlerMs: 100, skipUpload: true },
    extra: { WCP__EXECUTOR__MAX_DISPATCH_ATTEMPTS: '2' },
  });
  const wcp = run(sb, env);
  // The bridge's half: the Completion is refused and the executor told.
  await exec.waitFor(
    (l) => l.msg === 'wcp rejected a completion; dropped.' && l.code === 'OUTPUT_INVALID',
    30_000,
    'the OUTPUT_INVALID rejection',
  );
  // The lifecycle's half: re-dispatched while attempts remain, then failed on chain with the reason.
  const done = await until(
    () => scan(sb, 'done:'),
    (r) => r.length === 1,
    60_000,
    'the activity done',
  );
  expect(done[0]?.value.outcome).toBe('failed');
  const a = await chainActivity(w, id as string);
  expect(a.status).toBe(STATUS.failed);
  expect(a.resultRef).toContain('OUTPUT_INVALID');
  // Dispatched twice (max_dispatch_attempts), each Completion refused and the executor told.
  expect(fixtureEvents(exec, 'start').map((e) => e.attempt)).toEqual([1, 2]);
  const told = exec.lines().filter((l) => l.msg === 'wcp rejected a completion; dropped.');
  expect(told.map((l) => l.code)).toEqual(['OUTPUT_INVALID', 'OUTPUT_INVALID']);
  wcp.proc.kill('SIGTERM');
  expect(await wcp.exited).toBe(0);
}, 120_000);
