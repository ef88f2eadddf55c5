/**
 * Debug-only CPU profiling of a worker thread: with `WCP_DEBUG_CPU_PROF_DIR` set, each Piscina task (poller,
 * reconciler, executor bridge) starts a `node:inspector` profiler in its own thread and, when it ends, writes
 * `<kind>-<threadId>-<pid>.cpuprofile` (the Chrome format, as `bun --cpu-prof` writes for the main thread) and a
 * `<kind>-<threadId>-<pid>.cpu.json` with the thread's own CPU time (`process.threadCpuUsage`). Bun's
 * `--cpu-prof` profiles only the main thread; this covers the others. Unset, it costs nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

type Post = (method: string, params?: object) => Promise<unknown>;
type CpuUsage = { user: number; system: number };
/** Bun and Node have it; @types/node of this project does not declare it. */
const threadCpuUsage = (prev?: CpuUsage): CpuUsage =>
  (process as unknown as { threadCpuUsage(prev?: CpuUsage): CpuUsage }).threadCpuUsage(prev);

/** Starts profiling this thread when `WCP_DEBUG_CPU_PROF_DIR` is set; the returned function writes the profile. */
export async function startThreadProfile(kind: string): Promise<() => Promise<void>> {
  const dir = process.env.WCP_DEBUG_CPU_PROF_DIR;
  if (!dir) return async () => {};
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post: Post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params ?? {}, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))),
    );
  await post('Profiler.enable');
  await post('Profiler.start');
  const cpu0 = threadCpuUsage();
  const t0 = performance.now();
  return async () => {
    const cpu = threadCpuUsage(cpu0);
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    const base = join(dir, `${kind}-${threadId}-${process.pid}`);
    writeFileSync(`${base}.cpuprofile`, JSON.stringify(profile));
    writeFileSync(
      `${base}.cpu.json`,
      JSON.stringify({ kind, threadId, userUs: cpu.user, systemUs: cpu.system, wallMs: performance.now() - t0 }),
    );
  };
}
