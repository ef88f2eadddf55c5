/**
 * SIGINT, SIGTERM and SIGHUP from the moment the entry module starts evaluating, before any dependency loads:
 * the first import of `src/main.ts`, importing nothing but the exit codes. Until a command installs its own handlers:
 * - `wcp run` keeps the first signal for `runDaemon` to act on (`takeEarlySignal`), which then stops before
 *   starting anything, with exit 0; a second signal exits 130 at once, as a second signal always does;
 * - any other command ends at once with 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
 * A signal that arrives before this module runs (while the runtime itself loads) still ends the process by signal:
 * no JavaScript can see it.
 */
import { ExitCode } from './exit-codes.ts';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type EarlySignal = (typeof SIGNALS)[number];
const NUMBER: Record<EarlySignal, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** `wcp run`'s first non-flag argument, read straight from argv: the CLI is not parsed yet. */
const isRun = process.argv.slice(2).find((a) => !a.startsWith('-')) === 'run';
let pending: EarlySignal | undefined;

function onEarly(sig: EarlySignal): void {
  if (isRun && pending === undefined) {
    pending = sig;
    return;
  }
  process.exit(isRun ? ExitCode.Forced : 128 + NUMBER[sig]);
}

for (const s of SIGNALS) process.on(s, onEarly);

/**
 * Removes the early handlers (call once the command's own are installed) and returns the signal that arrived
 * before, if any.
 */
export function takeEarlySignal(): EarlySignal | undefined {
  for (const s of SIGNALS) process.off(s, onEarly);
  return pending;
}

/** The signal that arrived so far, without removing the handlers. */
export function earlySignal(): EarlySignal | undefined {
  return pending;
}
