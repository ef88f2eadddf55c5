/**
 * A step loop: runs `body` every `periodMs`, or at once when woken, never two rounds at a time (a wake during a
 * round runs the next round right after it). The manager runs its steps on separate loops so that a slow call in
 * one (a claim's estimate on a slow node) never delays another (the heartbeats).
 */
import { errorText } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';

export interface StepLoop {
  /** Runs a round now (or right after the current one). No-op before `start` and after `stop`. */
  wake(delayMs?: number): void;
  /** Starts the loop: its first round after `firstDelayMs` (default at once). */
  start(firstDelayMs?: number): void;
  /** Stops scheduling and waits for the round under way. */
  stop(): Promise<void>;
  /** Resolves after the next round ends. */
  nextRound(): Promise<void>;
}

/** A loop named `name` (in logs) over `body`; a throwing body is logged and the loop goes on. */
export function createStepLoop(name: string, periodMs: number, body: () => Promise<void>, log: Logger): StepLoop {
  let running = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let round: Promise<void> | null = null;
  let rerun = false;
  const waiters: Array<() => void> = [];

  async function run(): Promise<void> {
    timer = null;
    rerun = false;
    try {
      await body();
    } catch (e) {
      log.warn('lifecycle step failed', { step: name, error: errorText(e) });
    }
    round = null;
    for (const w of waiters.splice(0)) w();
    if (running) wake(rerun ? 0 : periodMs);
  }

  function wake(delayMs = 0): void {
    if (!running) return;
    if (round) {
      rerun = true;
      return;
    }
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      round = run();
    }, delayMs);
  }

  return {
    wake,
    start(firstDelayMs = 0) {
      running = true;
      wake(firstDelayMs);
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
      await round;
    },
    nextRound: () => new Promise<void>((r) => waiters.push(r)),
  };
}
