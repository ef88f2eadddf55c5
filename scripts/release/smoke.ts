/**
 * One short `wcp run` against a local anvil that claims, heartbeats and completes work, for any way of starting
 * wcp (a release binary, the binary under qemu, `deno run src/main.ts`): used by `npm run release` (smoke tests)
 * and by test/deno-compat.test.ts. The chain is the judge: every activity must read completed by this worker.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { type Anvil, startAnvil } from '../lib/anvil.ts';
import { deployStack, enqueueActivities, registerWorker, type Stack } from '../lib/deploy.ts';

/** Anvil (0.5 s blocks) with the reference contracts and accounts 1..workers registered as workers. */
export interface SmokeChain {
  anvil: Anvil;
  stack: Stack;
  stop(): Promise<void>;
}

/** Starts anvil, deploys the contracts from account 0 and registers `workers` wallets (capacity 16 each). */
export async function startSmokeChain(workers = 1): Promise<SmokeChain> {
  const anvil = await startAnvil({ blockTime: 0.5 });
  try {
    const stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
    for (let i = 1; i <= workers; i++) await registerWorker(stack, anvil.accounts[i]!.address, 16);
    return {
      anvil,
      stack,
      async stop() {
        stack.destroy();
        await anvil.stop();
      },
    };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}

/**
 * Env for a short `wcp run`: the embedded `local` profile pointed at `rpcUrl`, fast polling and 1 s heartbeats,
 * JSON logs, metrics off. Without `extra` it runs the built-in no-op test executor (`noopDelay`, default 3 s,
 * so heartbeats go out while tasks run); `extra` wins.
 */
export function smokeEnv(
  chain: SmokeChain,
  worker: number,
  queue: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ENVIRONMENT: 'local',
    WCP_LOG_FORMAT: 'json',
    WCP__ETHEREUM__RPC_URL: chain.anvil.url,
    WCP__ETHEREUM__WALLET_PRIVATE_KEY: chain.anvil.accounts[worker]!.privateKey,
    WCP__ETHEREUM__WALLET_ADDRESS: '',
    WCP__METRICS__ENABLED: 'false',
    WCP__SCHEDULER__QUEUE_NAME: queue,
    WCP__SCHEDULER__POLL_INTERVAL: '250ms',
    WCP__SCHEDULER__HEARTBEAT_INTERVAL: '1s',
    WCP__TX_POLICY__RECEIPT_POLL: '100ms',
    WCP__EXECUTOR__BUILTIN_NOOP_FOR_TESTS: 'true',
    WCP__EXECUTOR__NOOP_DELAY: '3s',
    WCP__SHUTDOWN__DRAIN_TIMEOUT: '2s',
    ...extra,
  };
}

/** What a smoke run saw. */
export interface SmokeRun {
  /** The daemon's exit code after SIGTERM (or the signal name). */
  exitCode: number | string;
  /** stdout and stderr, interleaved. */
  output: string;
  /** Milliseconds from start until every activity read completed on chain. */
  completedAfterMs: number;
}

export interface SmokeRunOptions {
  /** The command that starts wcp, without `run` (e.g. `['./wcp-0.1.0-linux-x64']`, `['deno', 'run', …, 'src/main.ts']`). */
  command: string[];
  /** Working directory: the store (`wcp.db`) goes here. */
  cwd: string;
  chain: SmokeChain;
  /** Account index of the worker wallet (registered by startSmokeChain). */
  worker: number;
  /** Activities to enqueue on a queue of their own. */
  count: number;
  /** Environment on top of PATH/HOME/TMPDIR; normally smokeEnv(...). */
  env: Record<string, string>;
  queue: string;
  activityType?: string;
  inputRef?: string;
  /** Give up after this long (the run is killed and the error carries its output). */
  timeoutMs: number;
}

/**
 * Enqueues `count` activities, starts `command run`, waits until the chain reads every one completed by the worker,
 * then sends SIGTERM and waits for the exit. Throws with the daemon's output when it exits early or times out.
 */
export async function smokeRun(o: SmokeRunOptions): Promise<SmokeRun> {
  const ids = await enqueueActivities(o.chain.stack, {
    queue: o.queue,
    count: o.count,
    ...(o.activityType === undefined ? {} : { activityType: o.activityType }),
    ...(o.inputRef === undefined ? {} : { inputRef: o.inputRef }),
  });
  const me = o.chain.anvil.accounts[o.worker]!.address.toLowerCase();
  const [cmd = '', ...args] = o.command;
  const started = Date.now();
  const proc = spawn(cmd, [...args, 'run'], {
    cwd: o.cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: o.cwd, TMPDIR: tmpdir(), ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((r) => proc.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  const get = o.chain.stack.contracts.taskQueue.getFunction('getActivity');
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`wcp exited early (${await exited}):\n${output.slice(-4000)}`);
      if (Date.now() - started > o.timeoutMs)
        throw new Error(`activities not completed within ${o.timeoutMs} ms:\n${output.slice(-4000)}`);
      const views = (await Promise.all(ids.map((id) => get(id)))) as Array<{ isCompleted: boolean; worker: string }>;
      if (views.every((v) => v.isCompleted && v.worker.toLowerCase() === me)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (error) {
    proc.kill('SIGKILL');
    throw error;
  }
  const completedAfterMs = Date.now() - started;
  proc.kill('SIGTERM');
  const kill = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const exitCode = await exited;
  clearTimeout(kill);
  return { exitCode, output, completedAfterMs };
}
