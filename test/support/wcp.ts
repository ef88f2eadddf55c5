/**
 * The compiled binary in end-to-end tests: the process runner of `scripts/lib/wcp-process.ts` (sandbox, start, run,
 * store scan, log lines), plus what only tests need: log lines by message, a liveness assertion and the
 * after-file cleanup that can keep a sandbox for a post-mortem.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LogLine, logLines, type Sandbox, type WcpProcess } from '../../scripts/lib/wcp-process.ts';

export {
  BINARY,
  captureOutput,
  jsonLines,
  type LogLine,
  logLines,
  ROOT,
  runWcp,
  type Sandbox,
  type StoreRecord,
  sandbox,
  startWcp,
  type WcpProcess,
  wcpScan,
} from '../../scripts/lib/wcp-process.ts';

/** wcp's log lines whose message is `msg` (a string: exactly; a RegExp: matching). */
export function linesWith(w: WcpProcess, msg: string | RegExp): LogLine[] {
  return logLines(w).filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));
}

/** Throws (with the tail of its output) if `w` has exited or was killed: a wait must not outlive the daemon. */
export function assertRunning(w: WcpProcess): void {
  if (w.proc.exitCode === null && w.proc.signalCode === null) return;
  throw new Error(`wcp exited early (${w.proc.exitCode ?? w.proc.signalCode}):\n${w.output().slice(-4000)}`);
}

/**
 * After a test file: SIGKILLs what still runs, then removes the sandbox, or with WCP_E2E_KEEP=1 keeps it with every
 * run's output (`<tag>-N.log`) for a post-mortem.
 */
export function finishSandbox(tag: string, sb: Sandbox | undefined, procs: WcpProcess[]): void {
  for (const w of procs) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  if (!sb) return;
  if (process.env.WCP_E2E_KEEP) {
    for (const [i, w] of procs.entries()) writeFileSync(join(sb.dir, `${tag}-${i + 1}.log`), w.output());
    console.log(`[${tag}] sandbox kept: ${sb.dir}`);
  } else sb.cleanup();
}
