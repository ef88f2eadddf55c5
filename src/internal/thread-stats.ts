/**
 * What each thread of the daemon says about itself: its JS heap and its event-loop lag, sampled every
 * `THREAD_STATS_INTERVAL_MS` (the supervisor's `wcp_thread_*` gauges, one `thread` label per thread), and, only when
 * `WCP_DEBUG_MEMORY=1` is set, its heap after a forced full collection with the live objects counted by type (and,
 * when asked, a V8-format heap snapshot written to `WCP_DEBUG_MEMORY_DIR`). Worker threads send theirs to the
 * supervisor over a MessagePort of their own (`startThreadReporter`), the typed messages below.
 *
 * The debug half is off in production: a forced collection stops the thread for milliseconds to seconds, and the
 * object counts walk the whole heap. Only the operator endpoint's `/debug/memory` (loopback clients only) asks.
 */
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';

/** How often each thread reports its heap and event-loop lag. */
export const THREAD_STATS_INTERVAL_MS = 5_000;
/** `1` enables the debug memory hook (forced GC, object counts, heap snapshots). */
export const DEBUG_MEMORY_ENV = 'WCP_DEBUG_MEMORY';
/** Where heap snapshots asked through the debug hook are written (none are written without it). */
export const DEBUG_MEMORY_DIR_ENV = 'WCP_DEBUG_MEMORY_DIR';
/** Object types reported per thread by the debug hook (the most numerous). */
const DEBUG_TOP_TYPES = 60;

export function debugMemoryEnabled(env: Record<string, string | undefined> = process.env): boolean {
  return env[DEBUG_MEMORY_ENV] === '1';
}

/** One thread's figures over the last interval. */
export interface ThreadStats {
  thread: string;
  /** JS heap in use now (not after a collection: it includes garbage not yet collected). */
  heap_used_bytes: number;
  /** Event-loop delay over the interval: mean and max, seconds. */
  loop_lag_mean_s: number;
  loop_lag_max_s: number;
}

/** One thread's heap after a forced full collection (debug hook only). */
export interface ThreadMemory {
  thread: string;
  heap_bytes_after_gc: number;
  /** The JS heap's capacity after the collection (what the thread's heap holds from the OS, live or not). */
  heap_capacity_bytes: number;
  /** Memory outside the JS heap that its objects own (buffers, native-backed objects). */
  extra_memory_bytes: number;
  /**
   * mimalloc (Bun's allocator, process-wide: the same in every thread's answer): bytes in live allocations. (Its
   * `committed` counter is not reported: under Bun 1.4 it only grows, 16 GB after 10k activities at 150 MB RSS.)
   */
  malloc_live_bytes?: number;
  object_count: number;
  /** Live objects by type, the `DEBUG_TOP_TYPES` most numerous (JSC's types under Bun). */
  object_types: Record<string, number>;
  /** The V8-format heap snapshot written, when one was asked for. */
  snapshot?: string;
}

/** Worker thread → supervisor, on the thread's stats port. */
export type ThreadStatsEvent =
  | { type: 'threadStats'; stats: ThreadStats }
  | { type: 'threadMemory'; id: number; memory?: ThreadMemory; error?: string };

/** Supervisor → worker thread (answered only where the debug hook is on). */
export type ThreadStatsCommand = { type: 'threadMemory'; id: number; snapshotPath?: string };

/** What a worker task carries to report its thread's figures (`worker-entry.ts` starts the reporter). */
export interface ThreadStatsTask {
  port: MessagePort;
  thread: string;
  intervalMs: number;
  debug: boolean;
}

/** Event-loop delay of this thread since the last `read` (node:perf_hooks' histogram; Bun implements it). */
export function createLoopLag(): { read(): { mean: number; max: number }; stop(): void } {
  let h: ReturnType<typeof monitorEventLoopDelay> | null = null;
  try {
    h = monitorEventLoopDelay({ resolution: 20 });
    h.enable();
  } catch {
    h = null; // a runtime without it: lag reads 0
  }
  return {
    read() {
      if (!h || h.count === 0) return { mean: 0, max: 0 };
      const out = { mean: h.mean / 1e9, max: h.max / 1e9 };
      h.reset();
      return out;
    },
    stop: () => h?.disable(),
  };
}

export function sampleThread(thread: string, lag: { read(): { mean: number; max: number } }): ThreadStats {
  const l = lag.read();
  return {
    thread,
    heap_used_bytes: process.memoryUsage().heapUsed,
    loop_lag_mean_s: l.mean,
    loop_lag_max_s: l.max,
  };
}

interface JscHeapStats {
  heapSize: number;
  heapCapacity: number;
  extraMemorySize: number;
  objectCount: number;
  objectTypeCounts: Record<string, number>;
  mimalloc?: {
    malloc_normal?: { current?: number };
    malloc_huge?: { current?: number };
  };
}

/** bun:jsc's heapStats, where the runtime is Bun (loaded the way `flock.ts` loads bun:ffi). */
function jscHeapStats(): JscHeapStats | null {
  try {
    return (createRequire(import.meta.url)('bun:jsc') as { heapStats(): JscHeapStats }).heapStats();
  } catch {
    return null;
  }
}

/**
 * This thread's heap after a forced full collection, live objects counted by type, and a V8-format heap snapshot
 * written to `snapshotPath` when given. Stops the thread while it runs: debug hook only.
 */
export function threadMemory(thread: string, snapshotPath?: string): ThreadMemory {
  const bun = (globalThis as { Bun?: { gc(full: boolean): void; generateHeapSnapshot(f: 'v8'): string } }).Bun;
  bun?.gc(true);
  const s = jscHeapStats();
  const types = Object.entries(s?.objectTypeCounts ?? {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, DEBUG_TOP_TYPES);
  const mem = process.memoryUsage();
  const mi = s?.mimalloc;
  const out: ThreadMemory = {
    thread,
    heap_bytes_after_gc: s?.heapSize ?? mem.heapUsed,
    heap_capacity_bytes: s?.heapCapacity ?? mem.heapTotal,
    extra_memory_bytes: s?.extraMemorySize ?? mem.external,
    ...(mi?.malloc_normal?.current !== undefined
      ? { malloc_live_bytes: mi.malloc_normal.current + (mi.malloc_huge?.current ?? 0) }
      : {}),
    object_count: s?.objectCount ?? 0,
    object_types: Object.fromEntries(types),
  };
  if (snapshotPath && bun) {
    writeFileSync(snapshotPath, bun.generateHeapSnapshot('v8'));
    out.snapshot = snapshotPath;
  }
  return out;
}

/**
 * In a worker thread: posts this thread's `ThreadStats` on `t.port` every `t.intervalMs`, and answers the debug
 * hook's `threadMemory` commands when `t.debug`. Returns the stop function (the task that started it calls it).
 */
export function startThreadReporter(t: ThreadStatsTask): () => void {
  const lag = createLoopLag();
  const post = (ev: ThreadStatsEvent) => {
    try {
      t.port.postMessage(ev);
    } catch {
      // the supervisor closed its end: nothing to report to
    }
  };
  const timer = setInterval(() => post({ type: 'threadStats', stats: sampleThread(t.thread, lag) }), t.intervalMs);
  timer.unref();
  const onCommand = (cmd: ThreadStatsCommand) => {
    if (cmd?.type !== 'threadMemory') return;
    if (!t.debug) return post({ type: 'threadMemory', id: cmd.id, error: 'the debug memory hook is off' });
    try {
      post({ type: 'threadMemory', id: cmd.id, memory: threadMemory(t.thread, cmd.snapshotPath) });
    } catch (e) {
      post({ type: 'threadMemory', id: cmd.id, error: e instanceof Error ? e.message : String(e) });
    }
  };
  t.port.on('message', onCommand);
  t.port.unref?.();
  return () => {
    clearInterval(timer);
    lag.stop();
    t.port.off('message', onCommand);
    t.port.close();
  };
}
