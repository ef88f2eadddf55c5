/**
 * `npm test`: everything CI checks, ending with one line `N passed, N failed`.
 *   0. Biome format and lint check of the whole tree (`biome.json`) — counted as one check;
 *   1. typecheck (tsc --noEmit, strict) — counted as one check;
 *   2. build dist/wcp (the end-to-end tests run the compiled binary) — counted as one check;
 *   3. bun test over src/ and test/ (unit, anvil, gRPC, LMDB and binary tests); the files that mostly wait run in
 *      a second bun test beside the first (`ALONGSIDE`).
 * Extra args are passed to `bun test` (e.g. `npm test -- test/e2e-foundation.test.ts`).
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dir, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const extra = process.argv.slice(2);

/** Files run by a second `bun test` beside the main one (see below). */
const ALONGSIDE = ['test/e2e-executor-gate.test.ts', 'test/e2e-reconciler-rpc.test.ts'];

/** Runs a command; its output goes to ours as it comes (`live`) or is only returned. */
function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  live = true,
): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const tee = (d: Buffer, to: NodeJS.WriteStream) => {
      out += d.toString();
      if (live) to.write(d);
    };
    p.stdout.on('data', (d: Buffer) => tee(d, process.stdout));
    p.stderr.on('data', (d: Buffer) => tee(d, process.stderr));
    p.on('exit', (code) => resolveRun({ code: code ?? 1, out }));
  });
}

let passed = 0;
let failed = 0;

/** The checks before the tests that failed (named again above the summary). */
const failedChecks: string[] = [];
function check(name: string, code: number): void {
  if (code === 0) passed++;
  else {
    failed++;
    failedChecks.push(name);
  }
}

/** Adds a `bun test` run's counts to the totals. */
function count(t: { code: number; out: string }): { code: number; out: string } {
  const pass = /^\s*(\d+) pass\s*$/m.exec(t.out);
  const fail = /^\s*(\d+) fail\s*$/m.exec(t.out);
  passed += pass ? Number(pass[1]) : 0;
  failed += fail ? Number(fail[1]) : 0;
  if (t.code !== 0 && !fail) failed++; // the runner itself failed (e.g. a file did not load)
  return t;
}
const started = Date.now();

if (extra.length === 0) {
  process.stdout.write('== biome check (format + lint)\n');
  const biome = await run(bin('biome'), ['check', '.']);
  check('biome check', biome.code);
  process.stdout.write('== typecheck\n');
  const tsc = await run(bin('tsc'), ['--noEmit', '-p', '.']);
  check('typecheck', tsc.code);
}

process.stdout.write('== build dist/wcp\n');
const build = await run(process.execPath, [join(root, 'scripts', 'build.ts')]);
check('build', build.code);

process.stdout.write('== bun test\n');
let tests: { code: number; out: string };
if (extra.length) tests = count(await run(process.execPath, ['test', ...extra]));
else {
  // The files that mostly wait (a minute with no executor, an RPC kept down) run in a second bun test beside the
  // rest: they cost little CPU and most of the suite's wall time. Their output follows the main run's, whole.
  const ignore = ALONGSIDE.map((f) => `--path-ignore-patterns=${f}`);
  const [main, side] = await Promise.all([
    run(process.execPath, ['test', ...ignore, 'src', 'test']),
    run(process.execPath, ['test', ...ALONGSIDE.map((f) => `./${f}`)], {}, false),
  ]);
  process.stdout.write(`\n== bun test (alongside: ${ALONGSIDE.join(', ')})\n${side.out}`);
  count(main);
  count(side);
  tests = { code: main.code || side.code, out: `${main.out}\n${side.out}` };
}

process.stdout.write(failureDigest(tests.out));
if (failedChecks.length)
  process.stdout.write(`\n== failed checks (their output is above): ${failedChecks.join(', ')}\n`);
process.stdout.write(`\n(${((Date.now() - started) / 1000).toFixed(1)} s)\n${passed} passed, ${failed} failed\n`);

/**
 * Each failed test's own output again (what bun printed between the test before it and its `(fail)` line, the
 * last 60 lines of it), just above the summary: CI keeps only the tail of a long run, and a failure is worth
 * nothing without its message.
 */
function failureDigest(out: string): string {
  const lines = out.split('\n');
  const blocks: string[] = [];
  let from = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/^\((pass|skip|todo)\)/.test(line)) from = i + 1;
    else if (line.startsWith('(fail)')) {
      if (!blocks.some((b) => b.endsWith(line)))
        blocks.push([...lines.slice(Math.max(from, i - 60), i), line].join('\n'));
      from = i + 1;
    }
  }
  return blocks.length ? `\n== failure details (${blocks.length})\n${blocks.join('\n--\n')}\n` : '';
}
process.exit(failed === 0 && tests.code === 0 ? 0 : 1);
