/**
 * Shared parts of the executor end-to-end tests (test/e2e-executor-*.test.ts): one anvil (0.5 s blocks) with the
 * reference contracts, the dev subnet-api, executor processes (test/fixtures/slow-executor.ts or the example
 * video executor) and the per-test hooks. Every test takes its own worker wallet and queue, so tests on one chain
 * never see each other's activities; the env for `dist/wcp` is `wcpEnv(worker, executorSettings(…))` (support/env.ts).
 */
import { afterAll, afterEach, beforeAll } from 'bun:test';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Anvil, freePort, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../scripts/lib/deploy.ts';
import { type DevSubnetApi, startDevSubnetApi } from '../scripts/lib/subnet-api/index.ts';
import { createLogger } from '../src/internal/logger.ts';
import { activityViews } from './support/chain.ts';
import { executorSettings, wcpEnv } from './support/env.ts';
import { until } from './support/wait.ts';
import { captureOutput, jsonLines, ROOT, type Sandbox, sandbox, startWcp, type WcpProcess } from './support/wcp.ts';

export interface World {
  anvil: Anvil;
  stack: Stack;
  api: DevSubnetApi;
  dir: string;
  /** A fresh registered worker account (1..9) and queue name for one test, with the chain: `wcpEnv` options. */
  worker(): Worker;
  stop(): Promise<void>;
}

/** One test's worker: its wallet, its queue and the chain's RPC URL. */
export interface Worker {
  address: string;
  privateKey: string;
  queue: string;
  rpcUrl: string;
}

/** Starts anvil (0.5 s blocks) with the reference contracts, `workers` registered wallets and the dev subnet-api. */
export async function startWorld(workers = 6): Promise<World> {
  const anvil = await startAnvil({ blockTime: 0.5 });
  const stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
  for (let i = 1; i <= workers; i++) await registerWorker(stack, anvil.accounts[i]!.address, 64);
  const dir = mkdtempSync(join(tmpdir(), 'wcp-e2e-exec-'));
  // The dev subnet-api checks holders and entitlements on this chain, as the real one does.
  const api = await startDevSubnetApi({
    dataDir: join(dir, 'blobs'),
    logger: quietLogger(),
    chain: {
      rpcUrl: anvil.url,
      chainId: stack.chainId,
      taskQueue: stack.addresses.taskQueue,
      workflowEngine: stack.addresses.workflowEngine,
    },
  });
  let next = 1;
  return {
    anvil,
    stack,
    api,
    dir,
    worker() {
      if (next > workers) throw new Error('out of registered worker accounts');
      const a = anvil.accounts[next]!;
      const queue = `q${next}`;
      next += 1;
      return { address: a.address, privateKey: a.privateKey, queue, rpcUrl: anvil.url };
    },
    async stop() {
      stack.destroy();
      await api.stop();
      await anvil.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function quietLogger() {
  return createLogger('dev-subnet-api', { level: 'error', json: true, write: () => {} });
}

/** Enqueues `count` activities on `queue`; their ids as decimal strings. */
export async function enqueue(
  w: World,
  queue: string,
  count: number,
  activityType: string,
  inputRef: string,
): Promise<string[]> {
  const ids = await enqueueActivities(w.stack, { queue, count, activityType, inputRef });
  return ids.map(String);
}

export interface ChainActivity {
  status: number;
  worker: string;
  isCompleted: boolean;
  resultRef: string;
}

/** The TaskQueue's activity statuses. */
export const STATUS = { pending: 1, claimed: 2, completed: 3, failed: 4 } as const;

/** One activity's `getActivity` view, with the status as a number. */
export async function chainActivity(w: World, id: string): Promise<ChainActivity> {
  const [v] = await activityViews(w.stack, [id]);
  if (!v) throw new Error(`no view for activity ${id}`);
  return {
    status: Number(v.status),
    worker: String(v.worker),
    isCompleted: Boolean(v.isCompleted),
    resultRef: String(v.resultRef),
  };
}

/** A child process whose output is collected; `lines()` are its parsed JSON lines. */
export interface Proc {
  proc: ChildProcess;
  port: number;
  output(): string;
  lines(): Array<Record<string, unknown>>;
  waitFor(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<Record<string, unknown>>;
  exited: Promise<number | string>;
  kill(sig?: NodeJS.Signals): void;
}

function collect(proc: ChildProcess, port: number, name: string): Proc {
  const { output, exited } = captureOutput(proc);
  const lines = () => jsonLines(output());
  return {
    proc,
    port,
    output,
    lines,
    exited,
    kill: (sig = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    },
    async waitFor(pred, timeoutMs = 30_000, what = 'a matching line') {
      const hit = await until(
        () => {
          const found = lines().find(pred);
          if (found === undefined && (proc.exitCode !== null || proc.signalCode !== null))
            throw new Error(`${name} exited before ${what}:\n${output().slice(-3000)}`);
          return found;
        },
        (found) => found !== undefined,
        timeoutMs,
        () => `${what} from ${name}:\n${output().slice(-3000)}`,
        50,
      );
      return hit as Record<string, unknown>;
    },
  };
}

export interface SlowExecutorOptions {
  port?: number;
  concurrency?: number;
  handlerMs?: number;
  graceMs?: number;
  protocolVersion?: number;
  /** Name the output without uploading it. */
  skipUpload?: boolean;
  /** PEM files: serve TLS with `cert` + `key`; with `clientCa`, require wcp's client certificate (mTLS). */
  tls?: { cert: string; key: string; clientCa?: string };
}

/** Starts test/fixtures/slow-executor.ts and waits until it listens. */
export async function startSlowExecutor(o: SlowExecutorOptions = {}): Promise<Proc> {
  const port = o.port ?? (await freePort());
  const args = [
    join(ROOT, 'test', 'fixtures', 'slow-executor.ts'),
    '--port',
    String(port),
    '--concurrency',
    String(o.concurrency ?? 2),
    '--handler-ms',
    String(o.handlerMs ?? 1000),
  ];
  if (o.graceMs !== undefined) args.push('--grace-ms', String(o.graceMs));
  if (o.protocolVersion !== undefined) args.push('--protocol-version', String(o.protocolVersion));
  if (o.skipUpload) args.push('--skip-upload');
  if (o.tls) args.push('--tls-cert', o.tls.cert, '--tls-key', o.tls.key);
  if (o.tls?.clientCa) args.push('--tls-client-ca', o.tls.clientCa);
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WCP_LOG_FORMAT: 'json' },
  });
  const p = collect(proc, port, 'slow-executor');
  await p.waitFor((l) => l.fixture === 'ready', 20_000, 'ready');
  return p;
}

/** Starts examples/video-executor/main.ts and waits until it listens. */
export async function startVideoExecutor(port?: number): Promise<Proc> {
  const p0 = port ?? (await freePort());
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'examples', 'video-executor', 'main.ts'), '--port', String(p0), '--concurrency', '2'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WCP_LOG_FORMAT: 'json' },
    },
  );
  const p = collect(proc, p0, 'video-executor');
  await p.waitFor((l) => l.msg === 'Video executor ready.', 20_000, 'ready');
  return p;
}

/** The fixture's task starts/ends. */
export const fixtureEvents = (p: Proc, kind: 'start' | 'end') => p.lines().filter((l) => l.fixture === kind);

/** SIGKILLs each process still running (thawing it first, in case it is stopped) and waits for its exit. */
export async function killAll(...procs: Array<Proc | undefined>): Promise<void> {
  for (const p of procs) {
    if (p === undefined) continue;
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      try {
        process.kill(p.proc.pid ?? -1, 'SIGCONT');
      } catch {
        /* gone */
      }
      p.proc.kill('SIGKILL');
      await p.exited;
    }
  }
}

/**
 * The hooks of a test file that shares one world of `workers` wallets: `onWorld` receives it before the first test;
 * what `track`, `run` and `box` start is killed or removed after each test.
 */
export function e2eSuite(workers: number, onWorld: (w: World) => void) {
  let world: World | undefined;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  beforeAll(async () => {
    world = await startWorld(workers);
    onWorld(world);
  }, 120_000);
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  }, 60_000);
  afterAll(async () => {
    await world?.stop();
  }, 60_000);
  const track = (p: Proc): Proc => {
    cleanups.push(() => killAll(p));
    return p;
  };
  const box = (): Sandbox => {
    const sb = sandbox();
    cleanups.push(() => sb.cleanup());
    return sb;
  };
  return {
    /** An executor process, killed after the test. */
    track,
    /** `wcp run` in `sb`, SIGKILLed after the test if still running. */
    run(sb: Sandbox, env: Record<string, string>): WcpProcess {
      const p = startWcp(sb, ['run'], env);
      cleanups.push(async () => {
        if (p.proc.exitCode === null) {
          p.proc.kill('SIGKILL');
          await p.exited;
        }
      });
      return p;
    },
    /** A sandbox removed after the test. */
    box,
    /**
     * A test's usual start: a fresh worker and sandbox, a slow executor (`executor` options; killed after the test),
     * `count` (1) `test.slow` activities on the worker's queue, and the env of `wcp run` against that executor and the
     * world's subnet-api, `extra` on top (`id`: the first activity). wcp is not started: `run(sb, env)`.
     */
    async slowSetup(o: { executor?: SlowExecutorOptions; count?: number; extra?: Record<string, string> } = {}) {
      const w = world as World;
      const me = w.worker();
      const sb = box();
      const exec = track(await startSlowExecutor(o.executor));
      const ids = await enqueue(w, me.queue, o.count ?? 1, 'test.slow', 'json:{}');
      const env = wcpEnv(me, executorSettings(exec.port, w.api.grpcEndpoint), o.extra ?? {});
      return { me, sb, exec, ids, id: ids[0], env };
    },
  };
}
