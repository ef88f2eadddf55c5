/**
 * The supervisor's view of every thread's heap and event-loop lag (`src/internal/thread-stats.ts`): its own,
 * sampled here, and each worker thread's, sent over a stats port the supervisor hands to that thread's first task.
 * Each report sets `wcp_thread_heap_used_bytes` and `wcp_thread_event_loop_lag_seconds` / `_max_seconds` with the
 * thread's name as `thread`. With `WCP_DEBUG_MEMORY=1`, `debugMemory` asks every thread for its heap after a forced
 * collection (and a heap snapshot each, when asked): the operator endpoint's `/debug/memory`.
 */
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Metrics } from '../internal/metrics.ts';
import {
  createLoopLag,
  DEBUG_MEMORY_DIR_ENV,
  debugMemoryEnabled,
  sampleThread,
  THREAD_STATS_INTERVAL_MS,
  type ThreadMemory,
  type ThreadStats,
  type ThreadStatsCommand,
  type ThreadStatsEvent,
  type ThreadStatsTask,
  threadMemory,
} from '../internal/thread-stats.ts';

/** The supervisor's own thread in the `thread` label. */
export const MAIN_THREAD = 'supervisor';
/** How long `debugMemory` waits for a thread's answer (a forced collection and a snapshot take a while). */
const DEBUG_ANSWER_MS = 60_000;

export interface ThreadMonitor {
  /** The stats end for a worker thread named `thread` (transfer `port`), or undefined if it already has one. */
  taskFor(thread: string): ThreadStatsTask | undefined;
  /** The latest figures of every thread. */
  latest(): ThreadStats[];
  /**
   * Debug hook only: every thread's heap after a forced collection; with `snapshot` (a label of [a-z0-9_-]) a
   * V8-format heap snapshot per thread is written to `WCP_DEBUG_MEMORY_DIR` as `<label>-<thread>.heapsnapshot`.
   */
  debugMemory(snapshot?: string): Promise<ThreadMemory[]>;
  stop(): void;
}

export function createThreadMonitor(deps: {
  metrics: Metrics;
  env?: Record<string, string | undefined>;
  /** Test seam: the reporting interval (default `THREAD_STATS_INTERVAL_MS`). */
  intervalMs?: number;
}): ThreadMonitor {
  const { metrics } = deps;
  const env = deps.env ?? process.env;
  const intervalMs = deps.intervalMs ?? THREAD_STATS_INTERVAL_MS;
  const debug = debugMemoryEnabled(env);
  const latest = new Map<string, ThreadStats>();
  /** Thread name → the supervisor's end of its stats port (one per thread: its first task's). */
  const ports = new Map<string, MessagePort>();
  const waiting = new Map<number, (ev: Extract<ThreadStatsEvent, { type: 'threadMemory' }>) => void>();
  let nextId = 1;

  const record = (s: ThreadStats) => {
    latest.set(s.thread, s);
    metrics.threadHeapUsed.set({ thread: s.thread }, s.heap_used_bytes);
    metrics.threadLoopLag.set({ thread: s.thread }, s.loop_lag_mean_s);
    metrics.threadLoopLagMax.set({ thread: s.thread }, s.loop_lag_max_s);
  };
  const lag = createLoopLag();
  const sampleMain = () => record(sampleThread(MAIN_THREAD, lag));
  const timer = setInterval(sampleMain, intervalMs);
  timer.unref();

  const snapshotPath = (label: string | undefined, thread: string): string | undefined => {
    const dir = env[DEBUG_MEMORY_DIR_ENV];
    if (label === undefined || !dir) return undefined;
    return join(dir, `${label}-${thread}.heapsnapshot`);
  };

  return {
    taskFor(thread) {
      if (ports.has(thread)) return undefined;
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (ev: ThreadStatsEvent) => {
        if (ev.type === 'threadStats') record(ev.stats);
        else if (ev.type === 'threadMemory') waiting.get(ev.id)?.(ev);
      });
      port1.unref?.();
      port1.on('close', () => ports.delete(thread));
      ports.set(thread, port1);
      return { port: port2, thread, intervalMs, debug };
    },
    latest: () => [...latest.values()],
    async debugMemory(snapshot) {
      if (!debug) throw new Error('the debug memory hook is off (WCP_DEBUG_MEMORY=1 turns it on)');
      if (snapshot !== undefined && !/^[a-z0-9_-]{1,40}$/.test(snapshot))
        throw new Error('snapshot label: 1 to 40 of [a-z0-9_-]');
      const asks = [...ports].map(
        ([thread, port]) =>
          new Promise<ThreadMemory>((resolve, reject) => {
            const id = nextId++;
            const t = setTimeout(() => {
              waiting.delete(id);
              reject(new Error(`thread ${thread} did not answer in ${DEBUG_ANSWER_MS} ms`));
            }, DEBUG_ANSWER_MS);
            waiting.set(id, (ev) => {
              clearTimeout(t);
              waiting.delete(id);
              if (ev.memory) resolve(ev.memory);
              else reject(new Error(`thread ${thread}: ${ev.error ?? 'no answer'}`));
            });
            const path = snapshotPath(snapshot, thread);
            port.postMessage({
              type: 'threadMemory',
              id,
              ...(path ? { snapshotPath: path } : {}),
            } as ThreadStatsCommand);
          }),
      );
      const own = threadMemory(MAIN_THREAD, snapshotPath(snapshot, MAIN_THREAD));
      return [own, ...(await Promise.all(asks))];
    },
    stop() {
      clearInterval(timer);
      lag.stop();
      for (const p of ports.values()) p.close();
      ports.clear();
    },
  };
}
