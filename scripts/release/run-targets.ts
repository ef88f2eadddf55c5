/**
 * Smoke tests of release binaries: for each binary this machine can run (natively, or linux-arm64 under
 * qemu-user-static with Debian's arm64 cross libraries), `version`, `config check` and a short `wcp run` that claims
 * and completes work on a local anvil. Every target it cannot run is reported with the reason.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SmokeChain, smokeEnv, smokeRun, startSmokeChain } from './smoke.ts';
import type { Target } from './stage.ts';

/** Debian's arm64 cross sysroot (libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross). */
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';

/** How to start a target's binary here: a command prefix and env, or why it cannot run. */
export type Runner = { command: string[]; env: Record<string, string>; emulated: boolean } | { reason: string };

/** How this machine runs `bin`, built for `t`. */
export function runnerFor(t: Target, bin: string): Runner {
  const hostOs = process.platform;
  const hostCpu = process.arch;
  if (t.os === hostOs && t.cpu === hostCpu) return { command: [bin], env: {}, emulated: false };
  if (t.os === 'linux' && t.cpu === 'arm64' && hostOs === 'linux') {
    const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64-static'], { encoding: 'utf8' }).stdout.trim();
    if (qemu === '') return { reason: 'qemu-aarch64-static is not installed (apt-get install qemu-user-static)' };
    if (!existsSync(join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) {
      return {
        reason: `no arm64 libraries in ${ARM64_SYSROOT} (apt-get install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)`,
      };
    }
    return { command: [qemu, bin], env: { QEMU_LD_PREFIX: ARM64_SYSROOT }, emulated: true };
  }
  return {
    reason: `a ${t.os}-${t.cpu} binary does not run on this ${hostOs}-${hostCpu} machine (CI runs it on a ${t.os} runner)`,
  };
}

/** Result of one target's smoke test. */
export type SmokeOutcome =
  | { target: string; ok: true; detail: string }
  | { target: string; ok: false; skipped: boolean; detail: string };

function check(cond: boolean, what: string, output: string): void {
  if (!cond) throw new Error(`${what}:\n${output.slice(-3000)}`);
}

async function smokeOne(
  t: Target,
  bin: string,
  commit: string,
  chain: SmokeChain,
  worker: number,
): Promise<SmokeOutcome> {
  const runner = runnerFor(t, bin);
  if ('reason' in runner) return { target: t.name, ok: false, skipped: true, detail: runner.reason };
  const dir = mkdtempSync(join(tmpdir(), `wcp-smoke-${t.name}-`));
  const slow = runner.emulated ? 4 : 1;
  try {
    const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, TMPDIR: tmpdir(), ...runner.env };
    const cli = (args: string[]) => {
      const [cmd = '', ...pre] = runner.command;
      const r = spawnSync(cmd, [...pre, ...args], {
        cwd: dir,
        env: { ...base, ENVIRONMENT: 'local' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
    };
    const v = cli(['version']);
    check(
      v.code === 0 && v.out.includes(`target: ${t.bun}`) && v.out.includes(`commit: ${commit}`),
      '`wcp version` failed or names another build',
      v.out,
    );
    const c = cli(['config', 'check', '--json']);
    check(c.code === 0 && c.out.includes('"ethereum"'), '`wcp config check` failed', c.out);
    const env = { ...runner.env, ...smokeEnv(chain, worker, `smoke-${t.name}`) };
    const run = await smokeRun({
      command: runner.command,
      cwd: dir,
      chain,
      worker,
      count: 4,
      env,
      queue: `smoke-${t.name}`,
      timeoutMs: 90_000 * slow,
    });
    check(run.exitCode === 0, `wcp run exited ${run.exitCode} after SIGTERM`, run.output);
    const how = runner.emulated ? ' under qemu' : '';
    return {
      target: t.name,
      ok: true,
      detail: `version, config check, run${how}: 4 activities claimed and completed in ${(run.completedAfterMs / 1000).toFixed(1)} s`,
    };
  } catch (error) {
    return {
      target: t.name,
      ok: false,
      skipped: false,
      detail: error instanceof Error ? error.message : String(error),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Smoke-tests each `[target, binary]` on one local anvil (one worker wallet per target), one after another. */
export async function smokeTest(built: Array<[Target, string]>, commit: string): Promise<SmokeOutcome[]> {
  const runnable = built.filter(([t, bin]) => !('reason' in runnerFor(t, bin)));
  const chain = runnable.length > 0 ? await startSmokeChain(runnable.length) : undefined;
  const out: SmokeOutcome[] = [];
  try {
    let worker = 1;
    for (const [t, bin] of built) {
      const runs = !('reason' in runnerFor(t, bin));
      out.push(await smokeOne(t, bin, commit, chain as SmokeChain, runs ? worker++ : 0));
    }
  } finally {
    await chain?.stop();
  }
  return out;
}
