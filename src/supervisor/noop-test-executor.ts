/**
 * A BUILT-IN NO-OP EXECUTOR FOR TESTS ONLY (`executor.builtin_noop_for_tests = true`): it "runs" each assigned
 * activity by waiting `delayMs` and reporting success with the output `{ result: "noop:<id>" }`. It exists so the
 * chain path (claim → heartbeat → complete → resume) can be tested and benchmarked without a real executor.
 * It never runs in production: the real path is the gRPC TaskStream bridge (`src/executor/`).
 */
import type { TaskSpec, ExecutorEvent } from '../executor/messages.ts';
import type { ExecutorLink } from '../lifecycle/context.ts';

export interface NoopTestExecutor extends ExecutorLink {
  start(): void;
  stop(): void;
}

export function createNoopTestExecutor(opts: {
  capacity: number;
  delayMs: number;
  emit: (ev: ExecutorEvent) => void;
}): NoopTestExecutor {
  const running = new Map<string, ReturnType<typeof setTimeout>>();
  let draining = false;
  const credits = () =>
    opts.emit({ type: 'credits', available: draining ? 0 : Math.max(0, opts.capacity - running.size) });
  return {
    start() {
      opts.emit({ type: 'state', state: 'ready', executor_id: 'builtin-noop-for-tests', activity_types: ['*'] });
      credits();
    },
    assign(task: TaskSpec) {
      if (running.has(task.activity_id) || running.size >= opts.capacity || draining) {
        opts.emit({
          type: 'assignRejected',
          activity_id: task.activity_id,
          reason: draining ? 'draining' : 'no_credits',
          retryable: true,
        });
        return;
      }
      opts.emit({ type: 'accepted', activity_id: task.activity_id });
      running.set(
        task.activity_id,
        setTimeout(() => {
          running.delete(task.activity_id);
          opts.emit({
            type: 'completion',
            activity_id: task.activity_id,
            attempt: task.attempt,
            result: { ok: true, output_refs: { result: `noop:${task.activity_id}` }, metadata_json: '{}' },
          });
          credits();
        }, opts.delayMs),
      );
      credits();
    },
    cancel(activityId: string) {
      const t = running.get(activityId);
      if (t) clearTimeout(t);
      running.delete(activityId);
      credits();
    },
    // Nothing to keep: its completions exist only in this process.
    ackCompletion() {},
    drain() {
      draining = true;
      credits();
    },
    stop() {
      for (const t of running.values()) clearTimeout(t);
      running.clear();
    },
  };
}
