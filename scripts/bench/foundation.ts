/**
 * Issue 2 (foundation): poll_to_record_ms_p99, store_durable_writes_per_s, binary_size_mb,
 * cold_start_to_first_poll_ms, idle_rss_mb.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rpcTransportOptions } from '../../src/chain/options.ts';
import { createRpcTransport } from '../../src/chain/transport.ts';
import { createPoller } from '../../src/poller/poller.ts';
import type { PollerEvent } from '../../src/poller/messages.ts';
import { recordClaimJobs } from '../../src/supervisor/claim-jobs.ts';
import { claimJobKey } from '../../src/store/keys.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { startAnvil } from '../lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker } from '../lib/deploy.ts';
import { wcpEnv } from '../lib/wcp-env.ts';
import { BINARY, ensureBinary, sandbox, startWcp } from '../lib/wcp-process.ts';
import {
  BENCH_SETTINGS,
  type BenchGroup,
  benchConfig,
  type Figure,
  median,
  nowMs,
  percentile,
  quietLogger,
  round,
  rssMb,
  sleep,
} from './common.ts';

const POLL_ROUNDS = 150;
const POLL_BATCH = 16;

function tempStore(tag: string): { store: Store; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), `wcp-bench-${tag}-`));
  return { dir, store: openStore({ path: join(dir, 'wcp.db'), logger: quietLogger('store') }) };
}

/** Concurrent `transact(…, { durable: true })` calls, `window` outstanding at a time, for `ms`. */
async function durableWrites(store: Store, window: number, ms: number): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  const writer = async () => {
    while (performance.now() < end) {
      const id = String(n++);
      await store.transact(
        (tx) =>
          tx.put(claimJobKey(id), { activity_id: id, queue_name: 'bench', created_at_ms: Date.now(), source: 'poll' }),
        { durable: true },
      );
    }
  };
  await Promise.all(Array.from({ length: window }, writer));
  return n / ((performance.now() - t0) / 1000);
}

export const foundation: BenchGroup = {
  name: 'foundation',
  issue: 2,
  async run(ctx) {
    const figures: Figure[] = [];

    // ---- store_durable_writes_per_s -----------------------------------------------------------------------
    {
      const { store, dir } = tempStore('store');
      try {
        await durableWrites(store, 64, 300); // warm-up
        const grouped = await durableWrites(store, 256, 3000);
        const serial = await durableWrites(store, 1, 3000);
        ctx.log(`store: grouped ${Math.round(grouped)}/s, serial ${Math.round(serial)}/s`);
        figures.push({
          name: 'store_durable_writes_per_s',
          value: Math.round(grouped),
          unit: 'writes/s',
          reference: '~3.4k/s one durable commit per transition (RUNTIME-NOTES)',
          notes:
            'store.transact({durable:true}), 256 concurrent writers, one ~120 B claim_job record per transaction, group-committed; 3 s',
        });
        figures.push({
          name: 'store_durable_writes_per_s_serial',
          value: Math.round(serial),
          unit: 'writes/s',
          notes: 'same, one writer awaiting each durable commit before the next (no grouping possible)',
        });
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }

    // ---- binary_size_mb -----------------------------------------------------------------------------------
    let binaryOk = true;
    try {
      ensureBinary();
    } catch (e) {
      ctx.log(`build failed, using the existing dist/wcp: ${String(e).slice(0, 300)}`);
    }
    try {
      figures.push({
        name: 'binary_size_mb',
        value: round(statSync(BINARY).size / 1024 / 1024, 1),
        unit: 'MB',
        reference: '~110.6 MB (RUNTIME-NOTES: a binary with lmdb + Piscina + grpc-js + ethers)',
        notes: 'size of dist/wcp (bun build --compile, one self-contained file)',
      });
    } catch {
      binaryOk = false;
      ctx.log('dist/wcp missing: binary figures skipped');
    }

    const anvil = await startAnvil();
    const stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
    try {
      await registerWorker(stack, anvil.accounts[1]!.address, 64);
      await enqueueActivities(stack, { queue: 'default', count: POLL_BATCH });

      // ---- poll_to_record_ms_p99 --------------------------------------------------------------------------
      {
        const { store, dir } = tempStore('poll');
        const rpc = createRpcTransport(rpcTransportOptions(benchConfig({ rpcUrl: anvil.url })));
        const samples: number[] = [];
        let recorded = 0;
        let chain: Promise<void> = Promise.resolve();
        let resolveDone!: () => void;
        const done = new Promise<void>((r) => {
          resolveDone = r;
        });
        const onEvent = (ev: PollerEvent) => {
          if (ev.type !== 'claimJobs') return;
          chain = chain.then(async () => {
            const added = await recordClaimJobs(store, ev.jobs);
            await store.flushed();
            const ms = nowMs() - ev.polled_at_ms;
            recorded += added.length;
            if (added.length > 0) samples.push(ms);
            // Forget them so the next round records the same activities again (a round of new work each time).
            await store.transact((tx) => {
              for (const j of added) tx.del(claimJobKey(j.activity_id));
            });
            if (samples.length >= POLL_ROUNDS) resolveDone();
          });
        };
        const poller = createPoller({
          rpc,
          addresses: { taskQueue: stack.addresses.taskQueue, multicall3: stack.addresses.multicall3 },
          queueName: 'default',
          pollBatch: POLL_BATCH,
          pollIntervalMs: 20,
          logger: quietLogger('poller'),
          emit: onEvent,
          now: nowMs,
        });
        poller.start();
        await Promise.race([done, sleep(60_000)]);
        await poller.stop();
        await chain;
        await store.close();
        rmSync(dir, { recursive: true, force: true });
        ctx.log(`poll→record: ${samples.length} rounds, p50 ${round(median(samples))} ms, ${recorded} records`);
        figures.push({
          name: 'poll_to_record_ms_p99',
          value: round(percentile(samples, 99)),
          unit: 'ms',
          notes: `createPoller (in-process, pollActivities of ${POLL_BATCH} via Multicall3 on anvil) → recordClaimJobs → store.flushed(); ${samples.length} rounds of ${POLL_BATCH} new claim_jobs each; p50 ${round(median(samples))} ms`,
        });
      }

      // ---- cold_start_to_first_poll_ms, idle_rss_mb ---------------------------------------------------------
      if (binaryOk) {
        const starts: number[] = [];
        for (let i = 0; i < 5; i++) {
          const sb = sandbox();
          const t0 = nowMs();
          const env = wcpEnv({ rpcUrl: anvil.url, privateKey: anvil.accounts[1]!.privateKey }, BENCH_SETTINGS, {
            WCP__SCHEDULER__MODE: 'observe',
          });
          const w = startWcp(sb, ['run'], env);
          try {
            await w.waitFor(/poller started/, 30_000);
            starts.push(nowMs() - t0);
          } finally {
            w.proc.kill('SIGTERM');
            await Promise.race([w.exited, sleep(10_000)]);
            if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
            sb.cleanup();
          }
        }
        ctx.log(`cold starts: ${starts.map((s) => Math.round(s)).join(', ')} ms`);
        figures.push({
          name: 'cold_start_to_first_poll_ms',
          value: round(median(starts), 0),
          unit: 'ms',
          notes: `spawn dist/wcp run (observe mode) from a fresh empty temp dir → "poller started" line (the first poll follows at once); median of 5: ${starts.map((s) => Math.round(s)).join(', ')}`,
        });

        const sb = sandbox();
        const w = startWcp(
          sb,
          ['run'],
          wcpEnv({ rpcUrl: anvil.url, privateKey: anvil.accounts[1]!.privateKey, queue: 'idle' }, BENCH_SETTINGS, {
            WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'true',
          }),
        );
        try {
          await w.waitFor(/poller started/, 30_000);
          const rss: number[] = [];
          for (let i = 0; i < 10; i++) {
            await sleep(500);
            rss.push(await rssMb(w.proc.pid as number));
          }
          ctx.log(`idle rss: ${rss.map((r) => Math.round(r)).join(', ')} MB`);
          figures.push({
            name: 'idle_rss_mb',
            value: round(rss[rss.length - 1] as number, 1),
            unit: 'MB',
            notes:
              'dist/wcp run in claim mode (tx manager, lifecycle, reconciler + poller threads, built-in no-op test executor) on an empty queue; VmRSS of the process 5 s after "poller started"',
          });
        } finally {
          w.proc.kill('SIGTERM');
          await Promise.race([w.exited, sleep(10_000)]);
          if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
          sb.cleanup();
        }
      }
    } finally {
      stack.destroy();
      await anvil.stop();
    }
    return figures;
  },
};
