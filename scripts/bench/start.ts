/**
 * Group `start`: cold_start_to_first_claim_ms and idle_rss_mb.
 *  - cold start: claim mode, a fresh chain (automining anvil) with one claimable activity waiting and the bench
 *    executor already listening; from spawning dist/wcp (a fresh copy in an empty dir, empty store) to its claim
 *    transaction reaching a proxy in front of the node. 5 runs, each on its own fresh chain; median.
 *  - idle RSS: the last run's process after its activity completed: executor connected, nothing held; VmRSS of the
 *    whole process (every thread) from /proc/<pid>/status.
 */
import { startBenchProxy } from '../lib/bench-proxy.ts';
import { enqueueActivities } from '../lib/deploy.ts';
import { type LogLine, logLines, sandbox, startWcp } from '../lib/wcp-process.ts';
import { type BenchGroup, claimedIds, type Figure, median, nowMs, round, rssMb, rssParts, sleep } from './common.ts';
import { benchEnv, getLogs, startExecProc, startWorld, stopWcp } from './world.ts';

const RUNS = 5;

const at = (lines: LogLine[], msg: string) => {
  const l = lines.find((x) => x.msg === msg);
  return l ? Date.parse(l.ts) : Number.NaN;
};

export const start: BenchGroup = {
  name: 'start',
  issue: 12,
  async run(ctx) {
    const exec = await startExecProc(8);
    const starts: number[] = [];
    const phases: string[] = [];
    let idle: number[] = [];
    let parts = '';
    try {
      for (let i = 0; i < RUNS; i++) {
        const world = await startWorld();
        const proxy = await startBenchProxy(world.anvil.url);
        const sb = sandbox();
        try {
          const [id] = await enqueueActivities(world.stack, {
            queue: 'default',
            count: 1,
            activityType: 'bench.task',
            inputRef: 'json:{}',
          });
          const tq = world.stack.contracts.taskQueue.interface;
          const env = benchEnv(world, proxy.url, exec.port);
          const t0 = nowMs();
          const w = startWcp(sb, ['run'], env);
          try {
            const deadline = Date.now() + 30_000;
            let claimAt = Number.NaN;
            while (Number.isNaN(claimAt)) {
              const tx = proxy.txs.find((t) => claimedIds(tq, t.data).length > 0);
              if (tx) claimAt = tx.atMs;
              else if (w.proc.exitCode !== null || Date.now() > deadline)
                throw new Error(`no claim from wcp within 30 s:\n${w.output().slice(-2000)}`);
              else await sleep(2);
            }
            const ms = claimAt - t0;
            starts.push(ms);
            const lines = logLines(w);
            const p = (m: string) => Math.round(at(lines, m) - t0);
            const scan = lines.find((l) => l.msg === 'scan done' && l.reason === 'startup');
            const scanning = lines.find((l) => l.msg === 'reconciler state' && l.to === 'scanning');
            phases.push(
              `${Math.round(ms)} ms (log lines after spawn: "wcp starting" ${p('wcp starting')}, "worker is active on chain" ${p('worker is active on chain')}, "activity manager started" ${p('activity manager started')}, reconciler scanning ${scanning ? Math.round(Date.parse(scanning.ts) - t0) : '?'} (scan ${scan?.duration_ms ?? '?'} ms), "startup scan done; claims enabled" ${p('startup scan done; claims enabled')})`,
            );
            ctx.log(`cold start ${i + 1}: ${phases[phases.length - 1]}`);
            if (i === RUNS - 1) {
              // Idle: the activity completed on chain, the lane quiet, then 10 s more.
              const deadline2 = Date.now() + 30_000;
              for (;;) {
                const head = await world.anvil.blockNumber();
                const done = await getLogs(
                  world.anvil.url,
                  world.stack.addresses.taskQueue,
                  [world.topics.completed, `0x${(id as bigint).toString(16).padStart(64, '0')}`],
                  0,
                  head,
                );
                if (done.length) break;
                if (Date.now() > deadline2) throw new Error('the cold-start activity did not complete');
                await sleep(200);
              }
              await sleep(10_000);
              idle = [];
              for (let k = 0; k < 5; k++) {
                idle.push(await rssMb(w.proc.pid as number));
                await sleep(1000);
              }
              parts = await rssParts(w.proc.pid as number);
              ctx.log(`idle rss ${idle.map((r) => round(r, 1)).join(', ')} MB; ${parts}`);
            }
          } finally {
            await stopWcp(w);
          }
        } finally {
          sb.cleanup();
          await proxy.close();
          await world.stop();
        }
      }
    } finally {
      await exec.stop();
    }
    const figures: Figure[] = [
      {
        name: 'cold_start_to_first_claim_ms',
        value: round(median(starts), 0),
        unit: 'ms',
        target: '≤ 300 ms',
        notes: `spawn of dist/wcp run (claim mode, local profile, fresh temp dir and store) → its claim tx arriving at a JSON-RPC proxy in front of anvil (automine, fresh chain, one bench.task activity enqueued, bench executor process already listening); median of ${RUNS}: ${phases.join('; ')}`,
      },
      {
        name: 'idle_rss_mb',
        value: round(median(idle), 1),
        unit: 'MB',
        target: '≤ 100 MB',
        notes: `VmRSS (/proc/<pid>/status: the whole process, every thread) of the last cold-start run, executor connected, its one activity completed, nothing held, 10 s after completion; median of 5 samples 1 s apart: ${idle.map((r) => round(r, 1)).join(', ')} MB; at the end ${parts}`,
      },
    ];
    return figures;
  },
};
