/**
 * Debug-only CPU profiling of the worker threads: with `WCP_DEBUG_CPU_PROF_DIR` set, a thread starts a
 * `node:inspector` profiler when its first Piscina task (poller, reconciler, executor bridge) starts, and when its
 * last running task ends writes `thread-<threadId>-<kinds>-<pid>.cpuprofile` (the Chrome format, as
 * `bun --cpu-prof` writes for the main thread) and `….cpu.json` with the thread's own CPU time
 * (`process.threadCpuUsage`). One profile per thread: the discovery thread runs the poller and the reconciler
 * side by side. Bun's `--cpu-prof` profiles only the main thread; this covers the others. Unset, it costs nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

type Post = (method: string, params?: object) => Promise<unknown>;
type CpuUsage = { user: number; system: number };
/** Bun and Node have it; @types/node of this project does not declare it. */
const threadCpuUsage = (prev?: CpuUsage): CpuUsage =>
  (process as unknown as { threadCpuUsage(prev?: CpuUsage): CpuUsage }).threadCpuUsage(prev);

/** This thread's profiler while tasks run. */
let running: { tasks: number; kinds: Set<string>; stop: Promise<() => Promise<void>> } | undefined;

async function start(dir: string): Promise<() => Promise<void>> {
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
    const kinds = [...(running?.kinds ?? [])].join('+');
    mkdirSync(dir, { recursive: true });
    const base = join(dir, `thread-${threadId}-${kinds}-${process.pid}`);
    writeFileSync(`${base}.cpuprofile`, JSON.stringify(profile));
    writeFileSync(
      `${base}.cpu.json`,
      JSON.stringify({ kinds, threadId, userUs: cpu.user, systemUs: cpu.system, wallMs: performance.now() - t0 }),
    );
  };
}

/** Profiles this thread while a task of `kind` runs (see the file comment); the returned function ends the task. */
export async function startThreadProfile(kind: string): Promise<() => Promise<void>> {
  const dir = process.env.WCP_DEBUG_CPU_PROF_DIR;
  if (!dir) return async () => {};
  running ??= { tasks: 0, kinds: new Set(), stop: start(dir) };
  const r = running;
  r.tasks += 1;
  r.kinds.add(kind);
  await r.stop;
  return async () => {
    r.tasks -= 1;
    if (r.tasks > 0) return;
    await (await r.stop)();
    running = undefined;
  };
}
