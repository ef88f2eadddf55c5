import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { createMetrics } from '../internal/metrics.ts';
import { serveOperatorHttp } from '../internal/http.ts';
import { startThreadReporter } from '../internal/thread-stats.ts';
import { untilTrue } from '../internal/testing/until.ts';
import { createThreadMonitor, MAIN_THREAD, type ThreadMonitor } from './threads.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A monitor with a "worker" reporter on the same thread (the wire is the same MessagePort pair). */
function setup(env: Record<string, string | undefined>) {
  const metrics = createMetrics();
  const monitor: ThreadMonitor = createThreadMonitor({ metrics, env, intervalMs: 20 });
  const task = monitor.taskFor('executor');
  if (!task) throw new Error('no stats task');
  const stop = startThreadReporter(task);
  cleanups.push(stop, () => monitor.stop());
  return { metrics, monitor };
}

const gauge = async (metrics: ReturnType<typeof createMetrics>, name: string) =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];

describe('thread stats', () => {
  test("each thread's heap and event-loop lag reach the wcp_thread_* gauges with its name", async () => {
    const { metrics, monitor } = setup({});
    await untilTrue(() => monitor.latest().length === 2, 'both threads reported');
    const heap = await gauge(metrics, 'wcp_thread_heap_used_bytes');
    expect(heap.map((v) => v.labels.thread).sort()).toEqual(['executor', MAIN_THREAD].sort());
    for (const v of heap) expect(v.value).toBeGreaterThan(1_000_000);
    const lag = await gauge(metrics, 'wcp_thread_event_loop_lag_seconds');
    expect(lag.map((v) => v.labels.thread).sort()).toEqual(['executor', MAIN_THREAD].sort());
    // One stats port per thread: a second task of the same thread gets none.
    expect(monitor.taskFor('executor')).toBeUndefined();
  });

  test('the debug memory hook is off unless WCP_DEBUG_MEMORY=1', async () => {
    const { monitor } = setup({});
    await expect(monitor.debugMemory()).rejects.toThrow(/off/);
  });

  test('with WCP_DEBUG_MEMORY=1: every thread answers its heap after a forced GC, objects by type, snapshots', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wcp-threads-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { monitor } = setup({ WCP_DEBUG_MEMORY: '1', WCP_DEBUG_MEMORY_DIR: dir });
    const mem = await monitor.debugMemory('first');
    expect(mem.map((m) => m.thread)).toEqual([MAIN_THREAD, 'executor']);
    for (const m of mem) {
      expect(m.heap_bytes_after_gc).toBeGreaterThan(100_000);
      expect(m.heap_capacity_bytes).toBeGreaterThanOrEqual(m.heap_bytes_after_gc);
      // Bun's allocator is process-wide: both threads see it.
      expect(m.malloc_live_bytes).toBeGreaterThan(m.heap_bytes_after_gc);
      expect(m.object_count).toBeGreaterThan(1000);
      expect(Object.keys(m.object_types).length).toBeGreaterThan(10);
      expect(m.snapshot).toBe(join(dir, `first-${m.thread}.heapsnapshot`));
      // A V8-format snapshot (what Chrome DevTools and heap-diff tools read).
      expect(JSON.parse(readFileSync(m.snapshot as string, 'utf8')).snapshot.meta.node_fields).toContain('name');
    }
    await expect(monitor.debugMemory('../etc')).rejects.toThrow(/label/);
  });

  test('/debug/memory answers loopback clients only when the supervisor offers the hook', async () => {
    const metrics = createMetrics();
    const http = await serveOperatorHttp(metrics, '127.0.0.1:0', createLogger('t', { write: () => {} }));
    cleanups.push(() => http.close());
    const port = (http.server.address() as { port: number }).port;
    const base = { health: () => ({ ok: true, state: 'running' }), ready: async () => [], status: async () => ({}) };
    http.setProbes(base);
    expect((await fetch(`http://127.0.0.1:${port}/debug/memory`)).status).toBe(404);
    http.setProbes({ ...base, debugMemory: async (s) => [{ thread: 'x', snapshot: s ?? null }] });
    const r = await fetch(`http://127.0.0.1:${port}/debug/memory?snapshot=a1`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ threads: [{ thread: 'x', snapshot: 'a1' }] });
  });
});
