/**
 * The one retry-delay rule of the daemon: exponential growth from `baseMs`, capped at `maxMs`, with full jitter
 * (a uniformly random wait in [0, ceiling], AWS's "full jitter") unless `jitter` is false. `attempt` counts
 * failures so far, from 1. Components keep their own attempt counters; this only computes the wait.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** Full jitter (default true); false gives the deterministic ceiling. */
  jitter?: boolean;
}

/** The ceiling of the wait after `attempt` failures (≥ 1): min(maxMs, baseMs · 2^(attempt−1)). */
export function backoffCeilingMs(p: BackoffPolicy, attempt: number): number {
  const exp = Math.min(Math.max(attempt, 1) - 1, 30);
  return Math.min(p.maxMs, p.baseMs * 2 ** exp);
}

/** The wait after `attempt` failures (≥ 1), in ms; `random` is injectable for tests. */
export function backoffDelayMs(p: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = backoffCeilingMs(p, attempt);
  return p.jitter === false ? ceiling : Math.floor(random() * ceiling);
}
