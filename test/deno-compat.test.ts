/**
 * Deno compatibility, by running it: `deno run src/main.ts` (Deno from npm, node_modules/.bin/deno) with the
 * narrowest permissions that work, against anvil. Activities go claim → heartbeat → complete with the built-in
 * no-op test executor, then with the real executor path (TaskStream over gRPC to test/fixtures/slow-executor.ts,
 * itself run under Deno, storage grants from the dev subnet-api); SIGTERM exits 0. Missing permissions give wcp's
 * message and exit 2, not an uncaught NotCapable.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../scripts/lib/anvil.ts';
import { type SmokeChain, smokeEnv, smokeRun, startSmokeChain } from '../scripts/release/smoke.ts';
import { createLogger } from '../src/internal/logger.ts';
import { type DevSubnetApi, startDevSubnetApi } from '../scripts/lib/subnet-api/index.ts';
import { callKinds, type LaneRec } from './support/store.ts';

const ROOT = resolve(import.meta.dir, '..');
const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const MAIN = join(ROOT, 'src', 'main.ts');
/** node_modules as Deno opens it (its real path, should it be a link). */
const MODULES = realpathSync(join(ROOT, 'node_modules'));

let chain: SmokeChain;
let api: DevSubnetApi;
let dir: string;
const children: ChildProcess[] = [];

/**
 * wcp's narrowest working permissions: sources from ROOT, the store (and its lock file) in `cwd`, the network on loopback only, and
 * /usr/bin/ldd, which lmdb's loader reads to tell glibc from musl (without it, it asks for --allow-sys instead), and
 * the host name (the store lock file records it).
 */
function denoWcp(cwd: string): string[] {
  return [
    DENO,
    'run',
    '--allow-env',
    `--allow-read=${ROOT},${MODULES},${cwd},/usr/bin/ldd`,
    `--allow-write=${cwd}`,
    `--allow-ffi=${MODULES}`,
    '--allow-sys=hostname',
    '--allow-net=127.0.0.1',
    MAIN,
  ];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wcp-deno-'));
  chain = await startSmokeChain(2);
  api = await startDevSubnetApi({
    dataDir: join(dir, 'blobs'),
    logger: createLogger('dev-subnet-api', { level: 'error', json: true, write: () => {} }),
  });
}, 60_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await api?.stop();
  await chain?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

test('under deno: wcp version names Deno; missing permissions are refused with the flags to add and exit 2', () => {
  const ok = spawnSync(denoWcp(dir)[0]!, [...denoWcp(dir).slice(1), 'version'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(ok.status, ok.stderr).toBe(0);
  expect(ok.stdout).toMatch(/^wcp dev \(deno 2\.\d+\.\d+\)\ncommit: .*\ntarget: source \(running on linux-x64\)/);
  const bare = spawnSync(DENO, ['run', '--allow-env', MAIN, 'version'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(bare.status).toBe(2);
  expect(bare.stderr).toContain('wcp: Deno did not grant a permission wcp needs');
  expect(bare.stderr).toMatch(/--allow-ffi=\S+node_modules \(lmdb's native addon/);
  expect(bare.stderr).not.toContain('NotCapable');
}, 60_000);

test('under deno: activities are claimed, heartbeated, run by the no-op test executor and completed; SIGTERM exits 0', async () => {
  const cwd = mkdtempSync(join(dir, 'noop-'));
  const env = smokeEnv(chain, 1, 'deno-noop');
  const run = await smokeRun({
    command: denoWcp(cwd),
    cwd,
    chain,
    worker: 1,
    count: 6,
    env,
    queue: 'deno-noop',
    timeoutMs: 60_000,
  });
  expect(run.exitCode, run.output.slice(-3000)).toBe(0);
  expect(run.output).toContain('"runtime":"deno"');
  const scan = spawnSync(
    DENO,
    [...denoWcp(cwd).slice(1), 'db', 'scan', 'lane:', '--json', '--db', join(cwd, 'wcp.db')],
    { cwd, encoding: 'utf8', timeout: 60_000 },
  );
  expect(scan.status, scan.stderr).toBe(0);
  const kinds = callKinds(
    scan.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { value: LaneRec }).value),
  );
  // Heartbeats went out while the tasks ran (1 s interval, 3 s tasks): every step of the lifecycle used the lane.
  expect([...kinds].sort()).toEqual(['claim_batch', 'complete', 'heartbeat']);
}, 90_000);

test('under deno: the real executor path (gRPC TaskStream to an SDK executor run under deno) completes work', async () => {
  const port = await freePort();
  const exec = spawn(
    DENO,
    [
      'run',
      '--allow-env',
      `--allow-read=${ROOT},${MODULES}`,
      '--allow-net=127.0.0.1',
      join(ROOT, 'test', 'fixtures', 'slow-executor.ts'),
      '--port',
      String(port),
      '--handler-ms',
      '1500',
    ],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(exec);
  let execOut = '';
  exec.stdout?.on('data', (d: Buffer) => (execOut += d.toString()));
  exec.stderr?.on('data', (d: Buffer) => (execOut += d.toString()));
  for (const deadline = Date.now() + 30_000; !execOut.includes('"fixture":"ready"'); ) {
    if (Date.now() > deadline || exec.exitCode !== null)
      throw new Error(`slow-executor did not start under deno:\n${execOut}`);
    await Bun.sleep(100);
  }
  const cwd = mkdtempSync(join(dir, 'exec-'));
  const env = smokeEnv(chain, 2, 'deno-exec', {
    WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'false',
    WCP__EXECUTOR__ENDPOINT: `127.0.0.1:${port}`,
    WCP__SUBNET_API__GRPC_ENDPOINT: api.grpcEndpoint,
  });
  const run = await smokeRun({
    command: denoWcp(cwd),
    cwd,
    chain,
    worker: 2,
    count: 3,
    env,
    queue: 'deno-exec',
    activityType: 'test.slow',
    inputRef: 'json:{"ms":1500}',
    timeoutMs: 60_000,
  });
  expect(run.exitCode, run.output.slice(-3000)).toBe(0);
  const ends = execOut.split('\n').filter((l) => l.includes('"fixture":"end"') && l.includes('"ok":true'));
  expect(ends.length).toBe(3);
  exec.kill('SIGTERM');
}, 90_000);
