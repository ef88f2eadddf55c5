/**
 * Runs the compiled `dist/wcp` binary from an empty temp directory (no node_modules above it), as an operator
 * would, for end-to-end tests and benchmarks: `ensureBinary()` builds it once per process if it is missing or
 * stale, `sandbox()` makes the directory, `startWcp()` runs the daemon and collects its output, `runWcp()` runs a
 * short command to completion, `wcpScan()` reads the store with `wcp db scan --json`, `logLines()` parses the
 * JSON log lines.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dir, '..', '..');
/** The compiled daemon that `scripts/build.ts` writes. */
export const BINARY = join(ROOT, 'dist', 'wcp');

/** Newest mtime of the files the binary is built from. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

let checked = false;
/** Builds dist/wcp when it is missing or older than any file under src/, proto/ or configs/; once per process. */
export function ensureBinary(): void {
  if (checked) return;
  checked = true;
  const fresh =
    existsSync(BINARY) &&
    statSync(BINARY).mtimeMs >= Math.max(...['src', 'proto', 'configs'].map((d) => newestSource(join(ROOT, d))));
  if (fresh) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.ts')], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
}

/** An empty temp directory holding a copy of the binary; the store goes to `dbPath` (`wcp.db`) inside it. */
export interface Sandbox {
  dir: string;
  bin: string;
  dbPath: string;
  cleanup(): void;
}

/** An empty temp dir holding only a copy of the binary (built first if needed). */
export function sandbox(): Sandbox {
  ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), 'wcp-e2e-'));
  const bin = join(dir, 'wcp');
  copyFileSync(BINARY, bin);
  spawnSync('chmod', ['+x', bin]);
  return { dir, bin, dbPath: join(dir, 'wcp.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A child process whose stdout and stderr are collected together. */
export interface CapturedOutput {
  /** Everything written so far. */
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

/** Collects a child's stdout and stderr into one string and watches for its exit. */
export function captureOutput(proc: ChildProcess): CapturedOutput {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | string>((r) => proc.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return { output: () => out, exited };
}

/** A running `wcp` process started by `startWcp`. */
export interface WcpProcess extends CapturedOutput {
  proc: ChildProcess;
  /** Resolves with the first match of `re` in the output; throws if wcp exits first or after `timeoutMs` (30 s). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

/** The environment every wcp run gets under `sb`: PATH, HOME and TMPDIR only, then `env`. */
function baseEnv(sb: Sandbox): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: sb.dir, TMPDIR: tmpdir() };
}

let runs = 0;

/** Starts `wcp <args>` in `sb` with JSON logs and only `env` (not this process's environment). */
export function startWcp(sb: Sandbox, args: string[], env: Record<string, string>): WcpProcess {
  const proc = spawn(sb.bin, args, {
    cwd: sb.dir,
    env: { ...baseEnv(sb), WCP_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const captured = captureOutput(proc);
  const { output } = captured;
  // WCP_E2E_LOG_DIR=dir keeps every run's output there once it exits (to read after a failed test).
  const keepIn = process.env.WCP_E2E_LOG_DIR;
  if (keepIn) {
    const n = ++runs;
    proc.once('close', () => writeFileSync(join(keepIn, `wcp-${process.pid}-${n}.log`), output()));
  }
  return {
    ...captured,
    proc,
    async waitFor(re, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = re.exec(output());
        if (m) return m[0];
        if (proc.exitCode !== null) {
          throw new Error(`wcp exited (${proc.exitCode}) before ${re}:\n${output().slice(-3000)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${re}:\n${output().slice(-3000)}`);
    },
  };
}

/** Runs a short wcp command to completion (60 s at most). */
export function runWcp(sb: Sandbox, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(sb.bin, args, {
    cwd: sb.dir,
    env: { ...baseEnv(sb), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One store record as `wcp db scan --json` prints it. */
export type StoreRecord = { key: string; value: Record<string, unknown> };

/** `wcp db scan <prefix> --json` → records in key order; throws when the scan fails (e.g. no store yet). */
export function wcpScan(sb: Sandbox, prefix: string): StoreRecord[] {
  const r = runWcp(sb, ['db', 'scan', prefix, '--json', '--db', sb.dbPath]);
  if (r.code !== 0) throw new Error(`db scan failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StoreRecord);
}

/** The JSON objects among `text`'s lines (lines that are not JSON objects are skipped). */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // A line cut short (the process was killed mid-write) or not JSON after all.
    }
  }
  return out;
}

/** One of wcp's JSON log lines: the message, level, time and the structured fields. */
export type LogLine = Record<string, unknown> & { msg: string; level: string; ts: string };

/** wcp's JSON log lines so far. */
export function logLines(w: CapturedOutput): LogLine[] {
  return jsonLines(w.output()) as LogLine[];
}
