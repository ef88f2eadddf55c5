/**
 * Drives the compiled `dist/wcp` binary from an empty temp directory (no node_modules above it), as an operator
 * would: `ensureBinary()` builds it once per test run if missing, `startWcp()` runs the daemon and collects its
 * output, `wcpScan()` reads the store with `wcp db scan --json`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dir, '..', '..');
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
/** Builds dist/wcp when it is missing or older than any file under src/, proto/ or configs/. */
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

export interface Sandbox {
  dir: string;
  bin: string;
  dbPath: string;
  cleanup(): void;
}

/** An empty temp dir holding only a copy of the binary. */
export function sandbox(): Sandbox {
  ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), 'wcp-e2e-'));
  const bin = join(dir, 'wcp');
  copyFileSync(BINARY, bin);
  spawnSync('chmod', ['+x', bin]);
  return { dir, bin, dbPath: join(dir, 'wcp.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface WcpProcess {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

export function startWcp(sb: Sandbox, args: string[], env: Record<string, string>): WcpProcess {
  const proc = spawn(sb.bin, args, {
    cwd: sb.dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: sb.dir, TMPDIR: tmpdir(), WCP_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | string>((r) => proc.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return {
    proc,
    output: () => out,
    exited,
    async waitFor(re, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = re.exec(out);
        if (m) return m[0];
        if (proc.exitCode !== null) throw new Error(`wcp exited (${proc.exitCode}) before ${re}:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${re}:\n${out.slice(-3000)}`);
    },
  };
}

/** Runs a short wcp command to completion. */
export function runWcp(sb: Sandbox, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(sb.bin, args, {
    cwd: sb.dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: sb.dir, TMPDIR: tmpdir(), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `wcp db scan <prefix> --json` → records. */
export function wcpScan(sb: Sandbox, prefix: string): Array<{ key: string; value: Record<string, unknown> }> {
  const r = runWcp(sb, ['db', 'scan', prefix, '--json', '--db', sb.dbPath]);
  if (r.code !== 0) throw new Error(`db scan failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
}

export async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await fn();
  }
  return last;
}

export type LogLine = Record<string, unknown> & { msg: string; level: string; ts: string };
/** wcp's JSON log lines (anything else is skipped). */
export function logLines(w: WcpProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const l of w.output().split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {}
  }
  return out;
}

/**
 * After a test file: SIGKILLs what still runs, then removes the sandbox, or with WCP_E2E_KEEP=1 keeps it with every
 * run's output (`<tag>-N.log`) for a post-mortem.
 */
export function finishSandbox(tag: string, sb: Sandbox | undefined, procs: WcpProcess[]): void {
  for (const w of procs) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  if (!sb) return;
  if (process.env.WCP_E2E_KEEP) {
    procs.forEach((w, i) => writeFileSync(join(sb.dir, `${tag}-${i + 1}.log`), w.output()));
    console.log(`[${tag}] sandbox kept: ${sb.dir}`);
  } else sb.cleanup();
}
