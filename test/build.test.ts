/**
 * The build glue end to end: compiles test/fixtures/probe with scripts/build.ts, copies the binary into an empty
 * temp directory (no node_modules anywhere above it), runs it there and checks its JSON line. The probe exercises
 * what breaks in a compiled Bun binary: lmdb's native addon, a Piscina pool with a long-lived task and a transferred
 * MessagePort, a proto loaded from embedded text, and grpc-js inside a worker thread.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dir, '..');
const PROBE = 'test/fixtures/probe';

interface ProbeOutput {
  ok: boolean;
  runtime: string;
  compiled: boolean;
  version: string;
  workerFilename: string;
  lmdb: { received: number; written: number; readBack: number; countedInWorker: number };
  msgpackrNative: boolean;
  lmdbCompression: boolean;
  worker: { url: string; compiled: boolean };
  config: { embeddedText: boolean };
  grpc: { sent: number; echoed: number; allMatch: boolean };
}

/** True when `dir` or a parent holds node_modules (the binary must not be able to lean on one). */
function nodeModulesAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) return true;
    if (dirname(d) === d) return false;
  }
}

function runProbe(
  cmd: string[],
  cwd: string,
): { output: ProbeOutput; stdout: string; stderr: string; exitCode: number } {
  const proc = Bun.spawnSync(cmd, { cwd, stdout: 'pipe', stderr: 'pipe', env: { ...process.env }, timeout: 30_000 });
  const stdout = proc.stdout.toString();
  const stderr = proc.stderr.toString();
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`probe printed no JSON line (exit ${proc.exitCode})\n${stdout}\n${stderr}`);
  return { output: JSON.parse(line) as ProbeOutput, stdout, stderr, exitCode: proc.exitCode ?? -1 };
}

function expectProbeWorked(o: ProbeOutput): void {
  expect(o.lmdb).toEqual({ received: 100, written: 100, readBack: 100, countedInWorker: 100 });
  expect(o.grpc).toEqual({ sent: 5, echoed: 5, allMatch: true });
  expect(o.msgpackrNative).toBe(true);
  expect(o.lmdbCompression).toBe(true);
  expect(o.config.embeddedText).toBe(true);
  expect(o.ok).toBe(true);
}

describe('scripts/build.ts', () => {
  let buildDir = '';
  let runDir = '';
  let binary = '';

  beforeAll(() => {
    buildDir = mkdtempSync(join(tmpdir(), 'wcp-build-'));
    runDir = mkdtempSync(join(tmpdir(), 'wcp-run-'));
  });
  afterAll(() => {
    for (const d of [buildDir, runDir]) if (d !== '') rmSync(d, { recursive: true, force: true });
  });

  test('compiles the probe into one executable, creating the output directory (a clean clone has no dist/)', () => {
    const outDir = join(buildDir, 'dist');
    const out = join(outDir, 'probe');
    const proc = Bun.spawnSync(
      [
        process.execPath,
        'scripts/build.ts',
        '--entry',
        `${PROBE}/main.ts`,
        '--worker',
        `${PROBE}/worker.ts`,
        '--out',
        out,
      ],
      { cwd: ROOT, stdout: 'pipe', stderr: 'pipe', timeout: 45_000 },
    );
    const log = proc.stdout.toString() + proc.stderr.toString();
    expect(proc.exitCode, log).toBe(0);
    expect(log).toMatch(/built .*: [\d.]+ MB/);
    expect(statSync(out).size).toBeGreaterThan(50 * 1024 * 1024);
    expect(readdirSync(outDir)).toEqual(['probe']); // one file: no source maps left beside it
    binary = join(runDir, 'probe');
    copyFileSync(out, binary);
    Bun.spawnSync(['chmod', '+x', binary]);
  }, 60_000);

  test('the binary runs from an empty directory with no node_modules above it', () => {
    expect(binary).not.toBe('');
    expect(nodeModulesAbove(runDir)).toBe(false);
    const { output, exitCode, stderr } = runProbe([binary], runDir);
    expect(exitCode, stderr).toBe(0);
    expectProbeWorked(output);
    expect(output.runtime).toBe('bun');
    expect(output.compiled).toBe(true);
    expect(output.version).toMatch(/^\d+\.\d+\.\d+.*\+[0-9a-z]+$/);
    expect(output.workerFilename).toBe('/$bunfs/root/test/fixtures/probe/worker.js');
    expect(output.worker).toEqual({ url: 'file:///$bunfs/root/test/fixtures/probe/worker.js', compiled: true });
  }, 40_000);

  test('the same probe runs unbuilt under bun', () => {
    const { output, exitCode, stderr } = runProbe([process.execPath, `${PROBE}/main.ts`], ROOT);
    expect(exitCode, stderr).toBe(0);
    expectProbeWorked(output);
    expect(output.compiled).toBe(false);
    expect(output.version).toBe('dev');
    expect(output.worker.url).toBe(new URL(`../${PROBE}/worker.ts`, import.meta.url).href);
  }, 40_000);

  test('a missing temp directory fails with an error that names TMPDIR', () => {
    expect(binary).not.toBe('');
    const proc = Bun.spawnSync([binary], {
      cwd: runDir,
      env: { ...process.env, TMPDIR: join(runDir, 'does-not-exist') },
      stdout: 'pipe',
      stderr: 'pipe',
      timeout: 30_000,
    });
    expect(proc.exitCode).not.toBe(0);
    expect(proc.stderr.toString()).toContain('is not writable');
  }, 40_000);
});
