/**
 * Issue 9's closing figure, end to end: executions per activity when wcp is killed with SIGKILL at least 20 times
 * on the same store, twice with the store wiped before the restart, while one real executor
 * (test/fixtures/slow-executor.ts, built on the SDK) stays up the whole run. Every task start the executor makes is
 * one execution; wcp must take what the executor holds or finished (Resync, Completions kept while no wcp was
 * there) instead of running it again, so the target is exactly one execution per activity.
 *
 * A seeded PRNG picks each wcp life's length and which two restarts wipe the store first; a last run finishes
 * everything. Then: every activity Completed on chain exactly once (one ActivityCompleted, none failed), and the
 * executor started each exactly once. Prints
 *   [executions] N activities, K kills, 2 wipes: mean X, max Y, re-runs Z
 * and, for any activity run more than once, each wcp life's log lines that name it.
 *
 * Found by this test and fixed: a wipe right after a life that took Completions (then acked once committed to the
 * store) but died before their finishing tx was mined lost those results (accepted acks now wait for the mined tx);
 * and a re-offer of a record rebuilt with no attempt history refused the run's Completion as WRONG_ATTEMPT.
 *
 * Replay a sequence with `WCP_EXEC_SEED=<the seed printed> bun test test/e2e-executions.test.ts`; keep every wcp
 * run's output with `WCP_E2E_LOG_DIR=<dir>`.
 */
import { expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { e2eSuite, enqueue, fixtureEvents, type Proc, startSlowExecutor, type World } from './e2e-executor-harness.ts';
import { countBy } from './e2e-lifecycle-lib.ts';
import { activityViews, queueEvents } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { scan } from './support/store.ts';
import { sleep, until } from './support/wait.ts';
import { assertRunning, logLines, type WcpProcess } from './support/wcp.ts';
import { prng } from './support/prng.ts';

const ACTIVITIES = 60;
const KILLS = 22;
/** `WCP_EXEC_WIPES=0` measures kills alone (to tell apart what the wipes cost). */
const WIPES = Number(process.env.WCP_EXEC_WIPES ?? 2);
/**
 * A life needs ~3 s (on 2 loaded cores) from spawn to its first dispatch: startup scan, executor handshake, claim
 * mined. Lengths around that land kills in every phase: before the Resync, while tasks run, while completing.
 */
const MIN_RUN_MS = 1_500;
const MAX_RUN_MS = 6_500;
/**
 * Each task runs 2 s, 4 at a time. wcp claims only what the executor has credits for, so a life that gets as far as
 * dispatching hands out one or two waves: the work spans most of the ~22 lives (~90 s).
 */
const HANDLER_MS = 2_000;
const CONCURRENCY = 4;

/**
 * Which restarts (after kill k, 2 ≤ k ≤ KILLS/3 + 1) wipe the store first: two distinct ones, early enough that work
 * is still in flight at them (on 2 loaded cores the 60 activities take 10–20 lives).
 */
function pickWipes(rand: () => number): Set<number> {
  const out = new Set<number>();
  const last = Math.floor(KILLS / 3) + 1;
  while (out.size < WIPES) out.add(2 + Math.floor(rand() * (last - 1)));
  return out;
}

/** One wcp life: how long it ran, whether the store was wiped before it, what the executor did meanwhile. */
interface Life {
  n: number;
  wiped: boolean;
  runMs: number;
  /** Task starts the executor had made when this life ended. */
  startsAtEnd: number;
  /** Tasks running in the executor when this life was killed. */
  runningAtKill: number;
}

let w: World;
const { track, run, box } = e2eSuite(1, (world) => {
  w = world;
});

/** The executor's task starts per activity id. */
function startsById(exec: Proc): Map<string, number> {
  return countBy(fixtureEvents(exec, 'start'), (e) => String(e.activity_id));
}

/** The ids a log field lists (an array, or a comma-separated string). */
function namesIn(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  return typeof v === 'string' ? v.split(',') : [];
}

/** The wcp life during which the executor made its `i`-th task start (lives.length + 1: the last run). */
const lifeOfStart = (i: number, lives: Life[]) => lives.find((l) => i < l.startsAtEnd)?.n ?? lives.length + 1;

/** The lives in which the executor started activity `id`. */
function startLives(id: string, exec: Proc, lives: Life[]): number[] {
  return fixtureEvents(exec, 'start').flatMap((e, i) => (String(e.activity_id) === id ? [lifeOfStart(i, lives)] : []));
}

/** Whether a store wipe came between the first and the last start of `id`. */
function acrossWipe(id: string, exec: Proc, lives: Life[]): boolean {
  const at = startLives(id, exec, lives);
  const first = at[0] ?? 0;
  const last = at.at(-1) ?? 0;
  return lives.some((l) => l.wiped && l.n > first && l.n <= last);
}

/** For an activity run more than once: its starts, and each wcp life's log lines that name it. */
function explain(id: string, exec: Proc, lives: Life[], procs: WcpProcess[]): string {
  const starts = fixtureEvents(exec, 'start')
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => String(e.activity_id) === id)
    .map(({ e, i }) => `start #${i} (attempt ${e.attempt}) during life ${lifeOfStart(i, lives)}`);
  const lines: string[] = [];
  procs.forEach((p, k) => {
    const mine = logLines(p).filter((l) => l.activity_id === id || namesIn(l.activity_ids).includes(id));
    const wiped = lives[k]?.wiped ? ' (store wiped before it)' : '';
    for (const l of mine) {
      const { ts, msg, level, ...rest } = l;
      lines.push(`  life ${k + 1}${wiped}: ${ts} ${level} ${msg} ${JSON.stringify(rest)}`);
    }
  });
  return `activity ${id}: ${starts.join('; ')}\n${lines.join('\n')}`;
}

test(`${ACTIVITIES} activities, ${KILLS} kill -9 of wcp, ${WIPES} store wipes, one executor up throughout: each executed exactly once`, async () => {
  const seed = Number(process.env.WCP_EXEC_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rand = prng(seed);
  console.log(`[executions] seed ${seed} (replay with WCP_EXEC_SEED=${seed})`);
  const wipeBefore = pickWipes(rand);

  const me = w.worker();
  const sb = box();
  const exec = track(await startSlowExecutor({ concurrency: CONCURRENCY, handlerMs: HANDLER_MS }));
  const ids = await enqueue(w, me.queue, ACTIVITIES, 'test.slow', 'json:{}');
  // Heartbeats every 2 s against the 60 s on-chain timeout: nothing expires across a restart gap.
  const env = wcpEnv(me, executorSettings(exec.port, w.api.grpcEndpoint), {
    WCP__SCHEDULER__MAX_INFLIGHT: '16',
    WCP__SCHEDULER__HEARTBEAT_INTERVAL: '2s',
  });
  const started = Date.now();
  const lives: Life[] = [];
  const procs: WcpProcess[] = [];
  const running = () => fixtureEvents(exec, 'start').length - fixtureEvents(exec, 'end').length;

  for (let i = 1; i <= KILLS; i++) {
    const wiped = wipeBefore.has(i - 1);
    if (wiped) {
      // The store, its `.pid` lock and LMDB's lock file: as if the disk were replaced.
      for (const f of [sb.dbPath, `${sb.dbPath}-lock`, `${sb.dbPath}.pid`]) rmSync(f, { force: true });
    }
    const runMs = Math.round(MIN_RUN_MS + rand() * (MAX_RUN_MS - MIN_RUN_MS));
    const p = run(sb, env);
    procs.push(p);
    await sleep(runMs);
    // It must still be running when killed: an exit on its own would be a failure of a different kind.
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) {
      throw new Error(
        `life ${i}: wcp exited by itself (${p.proc.exitCode ?? p.proc.signalCode}):\n${p.output().slice(-4000)}`,
      );
    }
    const runningAtKill = running();
    p.proc.kill('SIGKILL');
    expect(await p.exited).toBe('SIGKILL');
    lives.push({ n: i, wiped, runMs, startsAtEnd: fixtureEvents(exec, 'start').length, runningAtKill });
  }
  const killedAt = Date.now();
  const trail = lives.map((l) => `${l.wiped ? 'W' : ''}${l.runMs}ms→${l.startsAtEnd}/${l.runningAtKill}`);
  console.log(
    `[executions] ${KILLS} kills in ${((killedAt - started) / 1000).toFixed(1)} s, wipes before lives ${[...wipeBefore].map((k) => k + 1).join(',')} ` +
      `(W = wiped first; run length→starts so far/tasks running at the kill): ${trail.join(' ')}`,
  );

  // The last run: every activity final on chain (completed, or failed: asserted below) and nothing left held.
  const last = run(sb, env);
  procs.push(last);
  // Up to its startup scan (signal handlers set) before anything is checked: the work may all be done already.
  await last.waitFor(/startup scan done/, 60_000);
  await until(
    async () => {
      assertRunning(last);
      const views = await activityViews(w.stack, ids);
      const open = ids.filter((_, k) => ![3, 4].includes(Number(views[k]?.status))).length;
      return { open, held: scan(sb, 'inflight:').length };
    },
    (s) => s.open === 0 && s.held === 0,
    90_000,
    'every activity completed or failed on chain and nothing held',
  );
  last.proc.kill('SIGTERM');
  expect(await last.exited).toBe(0);
  expect(exec.proc.exitCode).toBeNull(); // the executor survived the whole run

  // Executions per activity: the executor's task starts.
  const starts = startsById(exec);
  const counts = ids.map((id) => starts.get(id) ?? 0);
  const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
  const max = Math.max(...counts);
  const reruns = counts.reduce((a, c) => a + Math.max(0, c - 1), 0);
  const dist = Object.fromEntries([...countBy(counts, String)].sort());
  const killsWhileRunning = lives.filter((l) => l.runningAtKill > 0).length;
  const twice = ids.filter((id) => (starts.get(id) ?? 0) > 1);
  const wipeReruns = twice.filter((id) => acrossWipe(id, exec, lives)).length;
  console.log(
    `[executions] ${ACTIVITIES} activities, ${KILLS} kills, ${WIPES} wipes: mean ${mean.toFixed(3)}, max ${max}, re-runs ${reruns}` +
      ` (executions→activities ${JSON.stringify(dist)}; activities run again: ${twice.length}, of them across a store wipe: ${wipeReruns};` +
      ` ${killsWhileRunning} kills with tasks running; ` +
      `total ${((Date.now() - started) / 1000).toFixed(1)} s, last run ${((Date.now() - killedAt) / 1000).toFixed(1)} s)`,
  );
  if (twice.length > 0) console.log(twice.map((id) => explain(id, exec, lives, procs)).join('\n\n'));
  // The chain: each activity completed exactly once, by us; none failed.
  const events = await queueEvents(w.anvil.url, w.stack.addresses.taskQueue);
  const completed = events.filter((e) => e.name === 'ActivityCompleted' && ids.includes(e.activityId));
  const perId = countBy(completed, (e) => e.activityId);
  expect(ids.filter((id) => perId.get(id) !== 1).map((id) => `${id}×${perId.get(id) ?? 0}`)).toEqual([]);
  expect(completed.filter((e) => e.worker !== me.address.toLowerCase())).toEqual([]);
  expect(events.filter((e) => e.name === 'ActivityFailed' && ids.includes(e.activityId))).toEqual([]);

  expect(counts.filter((c) => c === 0).length).toBe(0);
  expect(twice.map((id) => `${id}×${starts.get(id)}`)).toEqual([]);
  expect(max).toBe(1);
}, 240_000);
