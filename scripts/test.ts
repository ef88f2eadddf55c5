/**
 * `npm test`: everything CI checks, ending with one line `N passed, N failed`.
 *   0. Biome format and lint check of the whole tree (`biome.json`) — counted as one check;
 *   1. typecheck (tsc --noEmit, strict) — counted as one check;
 *   2. build dist/wcp (the end-to-end tests run the compiled binary) — counted as one check;
 *   3. bun test over src/ and test/ (unit, anvil, gRPC, LMDB and binary tests).
 * Extra args are passed to `bun test` (e.g. `npm test -- test/e2e-foundation.test.ts`).
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dir, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const extra = process.argv.slice(2);

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const tee = (d: Buffer, to: NodeJS.WriteStream) => {
      out += d.toString();
      to.write(d);
    };
    p.stdout.on('data', (d: Buffer) => tee(d, process.stdout));
    p.stderr.on('data', (d: Buffer) => tee(d, process.stderr));
    p.on('exit', (code) => resolveRun({ code: code ?? 1, out }));
  });
}

let passed = 0;
let failed = 0;
const started = Date.now();

if (extra.length === 0) {
  process.stdout.write('== biome check (format + lint)\n');
  const biome = await run(bin('biome'), ['check', '.']);
  if (biome.code === 0) passed++;
  else failed++;
  process.stdout.write('== typecheck\n');
  const tsc = await run(bin('tsc'), ['--noEmit', '-p', '.']);
  if (tsc.code === 0) passed++;
  else failed++;
}

process.stdout.write('== build dist/wcp\n');
const build = await run(process.execPath, [join(root, 'scripts', 'build.ts')]);
if (build.code === 0) passed++;
else failed++;

process.stdout.write('== bun test\n');
const tests = await run(process.execPath, ['test', ...(extra.length ? extra : ['src', 'test'])]);
const pass = /^\s*(\d+) pass\s*$/m.exec(tests.out);
const fail = /^\s*(\d+) fail\s*$/m.exec(tests.out);
passed += pass ? Number(pass[1]) : 0;
failed += fail ? Number(fail[1]) : 0;
if (tests.code !== 0 && !fail) failed++; // the runner itself failed (e.g. a file did not load)

process.stdout.write(failureDigest(tests.out));
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
