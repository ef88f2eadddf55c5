/**
 * Waits of the end-to-end tests: poll until a condition holds, with a timeout and a message naming what was awaited
 * (and the last value seen), and the waits several suites share: done records, activities completed on chain.
 */
import type { Stack } from '../../scripts/lib/deploy.ts';
import type { Sandbox, WcpProcess } from '../../scripts/lib/wcp-process.ts';
import { type ActivityView, activityViews } from './chain.ts';
import { doneById, doneRecords, scan } from './store.ts';
import { until } from '../../src/internal/testing/until.ts';
import { assertRunning } from './wcp.ts';

export { until, untilTrue } from '../../src/internal/testing/until.ts';

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `n` done records exist and nothing is held (no `inflight:`); `alive` runs on every poll. */
export async function waitDone(sb: Sandbox, n: number, timeoutMs: number, alive?: () => void) {
  return await until(
    () => {
      alive?.();
      return { done: doneRecords(sb).length, held: scan(sb, 'inflight:').length };
    },
    (s) => s.done >= n && s.held === 0,
    timeoutMs,
    `${n} done records`,
  );
}

/** Waits until every id is Completed on chain by `worker` and has a `done: completed` record; `w` must keep running. */
export async function waitAllCompleted(
  sb: Sandbox,
  stack: Stack,
  ids: string[],
  worker: string,
  timeoutMs: number,
  w?: WcpProcess,
) {
  await until(
    async () => {
      if (w) assertRunning(w);
      const views = await activityViews(stack, ids);
      const done = doneById(sb);
      return ids.filter((id, i) => {
        const v = views[i] as ActivityView;
        const ours = Number(v.status) === 3 && v.worker.toLowerCase() === worker.toLowerCase();
        return !(ours && done.get(id)?.outcome === 'completed');
      });
    },
    (missing) => missing.length === 0,
    timeoutMs,
    'every activity completed by us on chain and done: completed',
  );
}
