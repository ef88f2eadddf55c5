/**
 * Group `soak` (issue 24): memory per unit of work, not per hour. dist/wcp against the dispatch group's STUB chain
 * (stub-daemon.ts: an endless queue, every tx mined on arrival), the bench executor (0 ms tasks), as fast as wcp
 * goes, for `--soak-activities` completions (default 100,000). Every `STEP` completions the process is sampled:
 * RssAnon and RssFile apart (/proc/<pid>/status), each thread's JS heap after a forced full collection (the
 * daemon's debug memory hook, `WCP_DEBUG_MEMORY=1`, at /debug/memory), the store file (size, and the records in it
 * by prefix, read-only), CPU seconds. The first step is warm-up; the growth figures are least-squares slopes over
 * the later samples, per activity, reported per 100,000 activities whatever was run (the output says how many).
 *
 * The live objects by type of each thread are compared between the first sample after warm-up and the last: what
 * grows with the activities seen shows there (`WCP_BENCH_SNAPSHOT_DIR=dir` also keeps V8-format heap snapshots of
 * every thread at both points, for a heap-snapshot viewer).
 *
 * The daemon runs with `store.done_retention` 60 s (and `reconciler.window` 60 s, which it may not exceed), so
 * retention deletes as fast as work arrives within the run, and logs at warn (per-activity info lines would be
 * most of the bench process's memory at 100k).
 */
import { statSync } from 'node:fs';
import { freePort } from '../lib/anvil.ts';
import type { ThreadMemory } from '../../src/internal/thread-stats.ts';
import { PREFIX } from '../../src/store/keys.ts';
import { openStore } from '../../src/store/store.ts';
import { type BenchGroup, cpuSeconds, type Figure, quietLogger, round, rssSplitMb, sleep, slope } from './common.ts';
import { startStubDaemon, startStubParts } from './stub-daemon.ts';

const WINDOW = 256;
/** Completions between samples (smaller runs take 5 samples). */
const FULL_STEP = 10_000;
const PER = 100_000;
const MB = 1024 * 1024;

interface Sample {
  activities: number;
  s: number;
  rssAnonMb: number;
  rssFileMb: number;
  heap: Record<string, number>;
  /** Sum over the threads of the JS heaps' capacity and of their extra (native-owned) memory, MB. */
  heapCapacityMb: number;
  extraMb: number;
  /** mimalloc's live bytes (process-wide), MB. */
  mallocLiveMb: number;
  types: Record<string, Record<string, number>>;
  storeFileMb: number;
  storeAllocMb: number;
  records: Record<string, number>;
  cpuS: number;
}

/** Records in the store by prefix (a read-only LMDB reader beside the daemon). */
function storeRecords(path: string): Record<string, number> {
  const store = openStore({ path, readOnly: true, logger: quietLogger('soak-store') });
  try {
    return Object.fromEntries(Object.entries(PREFIX).map(([k, p]) => [k, store.count(p)]));
  } finally {
    store.close();
  }
}

/** The types whose live-object count grew most from `a` to `b`. */
function grown(a: Record<string, number>, b: Record<string, number>, n = 8): string {
  return (
    Object.entries(b)
      .map(([t, c]) => [t, c - (a[t] ?? 0)] as const)
      .filter(([, d]) => d > 0)
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([t, d]) => `${t} +${d}`)
      .join(', ') || 'none'
  );
}

export const soak: BenchGroup = {
  name: 'soak',
  issue: 24,
  async run(ctx) {
    const total = ctx.soakActivities;
    const step = Math.min(FULL_STEP, Math.max(1, Math.floor(total / 5)));
    const metricsPort = await freePort();
    const parts = await startStubParts(WINDOW);
    const snapshotDir = process.env.WCP_BENCH_SNAPSHOT_DIR;
    const d = startStubDaemon(
      parts,
      WINDOW,
      {
        WCP__STORE__DONE_RETENTION: '60s',
        WCP__RECONCILER__WINDOW: '60s',
        WCP__METRICS__ENABLED: 'true',
        WCP__METRICS__LISTEN: `127.0.0.1:${metricsPort}`,
        WCP__LOG__LEVEL: 'warn',
      },
      { WCP_DEBUG_MEMORY: '1', ...(snapshotDir ? { WCP_DEBUG_MEMORY_DIR: snapshotDir } : {}) },
    );
    const { stub } = parts;
    const pid = d.w.proc.pid as number;
    const debugMemory = async (snapshot?: string): Promise<ThreadMemory[]> => {
      const q = snapshot && snapshotDir ? `?snapshot=${snapshot}` : '';
      const r = await fetch(`http://127.0.0.1:${metricsPort}/debug/memory${q}`);
      if (!r.ok) throw new Error(`/debug/memory answered ${r.status}: ${await r.text()}`);
      return ((await r.json()) as { threads: ThreadMemory[] }).threads;
    };
    const t0 = performance.now();
    const sample = async (snapshot?: string): Promise<Sample> => {
      const activities = stub.completedAt.length;
      const threads = await debugMemory(snapshot);
      const st = statSync(d.sb.dbPath);
      const p = await rssSplitMb(pid);
      const s: Sample = {
        activities,
        s: (performance.now() - t0) / 1000,
        rssAnonMb: p.anon,
        rssFileMb: p.file,
        heap: Object.fromEntries(threads.map((t) => [t.thread, t.heap_bytes_after_gc / MB])),
        heapCapacityMb: threads.reduce((a, t) => a + t.heap_capacity_bytes, 0) / MB,
        extraMb: threads.reduce((a, t) => a + t.extra_memory_bytes, 0) / MB,
        mallocLiveMb: (threads[0]?.malloc_live_bytes ?? Number.NaN) / MB,
        types: Object.fromEntries(threads.map((t) => [t.thread, t.object_types])),
        storeFileMb: st.size / MB,
        storeAllocMb: (st.blocks * 512) / MB,
        records: storeRecords(d.sb.dbPath),
        cpuS: await cpuSeconds(pid),
      };
      ctx.log(
        `${activities} activities in ${round(s.s, 0)} s: RssAnon ${round(s.rssAnonMb, 1)} MB, RssFile ${round(s.rssFileMb, 1)} MB, heap after GC ${Object.entries(
          s.heap,
        )
          .map(([t, v]) => `${t} ${round(v, 2)}`)
          .join(
            ', ',
          )} MB (capacity ${round(s.heapCapacityMb, 1)}, extra ${round(s.extraMb, 1)}); mimalloc live ${round(s.mallocLiveMb, 1)} MB; store ${round(s.storeFileMb, 1)} MB (${JSON.stringify(s.records)})`,
      );
      return s;
    };
    try {
      await d.firstCompletion();
      ctx.log(`soak: ${total} activities, a sample every ${step} (the first ${step} are warm-up)`);
      const samples: Sample[] = [];
      let next = step;
      while (next <= total) {
        if (d.w.proc.exitCode !== null) throw new Error(`wcp exited during the soak:\n${d.w.output().slice(-3000)}`);
        if (stub.completedAt.length >= next) {
          samples.push(await sample(next === step ? 'warm' : next + step > total ? 'end' : undefined));
          next += step;
        } else await sleep(250);
      }
      const warm = samples[0] as Sample;
      const last = samples[samples.length - 1] as Sample;
      const fit = (f: (s: Sample) => number) =>
        slope(
          samples.map((s) => s.activities),
          samples.map(f),
        ) * PER;
      const ran = last.activities;
      const rate = (last.activities - warm.activities) / (last.s - warm.s);
      const cpuMs = ((last.cpuS - warm.cpuS) / (last.activities - warm.activities)) * 1000;
      const scope = `${ran} activities run (target 100,000${ran < PER ? '; shortened with --soak-activities, the figure is the fit extrapolated' : ''}), ${samples.length} samples every ${step} after ${step} of warm-up; least-squares slope per activity × 100,000; ${round(rate, 1)} activities/s, wcp CPU ${round(cpuMs, 1)} ms per activity`;
      const series = (f: (s: Sample) => number, digits = 1) => samples.map((s) => round(f(s), digits)).join(' ');
      const figures: Figure[] = [
        {
          name: 'soak_activities',
          value: ran,
          unit: 'activities',
          notes: `claim → run (0 ms) → complete → done → retention (store.done_retention 60 s) through dist/wcp against the stub chain (standalone activities: no workflow, so no resume tx), bench executor ${WINDOW} slots; ${scope}`,
        },
        {
          name: 'rss_anon_growth_mb_per_100k_activities',
          value: round(
            fit((s) => s.rssAnonMb),
            2,
          ),
          unit: 'MB/100k activities',
          target: '≤ 10 after warm-up',
          notes: `RssAnon (heaps of every thread, malloc, native buffers) MB at the samples: ${series((s) => s.rssAnonMb)}, each taken right after a forced collection in every thread; of it: the JS heaps' capacity (all threads) ${series((s) => s.heapCapacityMb)} MB, memory their objects own outside them ${series((s) => s.extraMb)} MB, mimalloc (Bun's allocator, every thread) live ${series((s) => s.mallocLiveMb)} MB; ${scope}`,
        },
        {
          name: 'rss_file_mb',
          value: round(last.rssFileMb, 1),
          unit: 'MB',
          reference: `first ${round(warm.rssFileMb, 1)} MB`,
          notes: `RssFile (mapped files: the binary and the store's memory map) at the samples: ${series((s) => s.rssFileMb)}; growth ${round(
            fit((s) => s.rssFileMb),
            2,
          )} MB/100k activities`,
        },
        ...Object.keys(warm.heap).map(
          (thread): Figure => ({
            name: `heap_growth_mb_per_100k_activities{thread="${thread}"}`,
            value: round(
              fit((s) => s.heap[thread] ?? Number.NaN),
              3,
            ),
            unit: 'MB/100k activities',
            target: '≤ 5',
            notes: `JS heap of the ${thread} thread after Bun.gc(true), MB: ${series((s) => s.heap[thread] ?? Number.NaN, 2)}; live objects grown from the first sample to the last: ${grown(warm.types[thread] ?? {}, last.types[thread] ?? {})}`,
          }),
        ),
        {
          name: 'store_bytes_per_retained_activity',
          value: Math.round((last.storeAllocMb * MB) / Math.max(1, last.records.done ?? 0)),
          unit: 'bytes',
          notes: `the store file's allocated size (${round(last.storeAllocMb, 1)} MB) ÷ the done: records retention keeps at the end (${last.records.done}); records at the end by prefix: ${JSON.stringify(last.records)}`,
        },
        {
          name: 'store_file_growth_mb_per_100k_activities',
          value: round(
            fit((s) => s.storeAllocMb),
            2,
          ),
          unit: 'MB/100k activities',
          target: '0 once retention deletes as fast as work arrives',
          notes: `allocated MB of wcp.db at the samples: ${series((s) => s.storeAllocMb)} (done: records ${samples.map((s) => s.records.done).join(' ')}; tx: refs ${samples.map((s) => s.records.tx).join(' ')}); LMDB reuses the pages retention frees`,
        },
      ];
      return figures;
    } finally {
      await d.stop();
      await parts.stop();
    }
  },
};
