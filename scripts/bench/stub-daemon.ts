/**
 * dist/wcp against the STUB chain (stub-chain.ts), the bench executor in its own process (0 ms tasks) and the dev
 * subnet-api: what the `dispatch` and `soak` groups run. `settings` layers over the ones both share (claim mode,
 * max_inflight `window`, poll 100 ms × 128, claim_batch 64, tx max_in_flight 1024, receipt_poll 20 ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devAccounts } from '../lib/anvil.ts';
import { compileContracts } from '../lib/contracts.ts';
import { startDevSubnetApi } from '../lib/subnet-api/index.ts';
import { wcpEnv } from '../lib/wcp-env.ts';
import { type Sandbox, sandbox, startWcp, type WcpProcess } from '../lib/wcp-process.ts';
import { BENCH_SETTINGS, quietLogger, sleep } from './common.ts';
import { STUB_ADDRESSES, type StubChain, startStubChain } from './stub-chain.ts';
import { type ExecProc, startExecProc, stopWcp } from './world.ts';

export interface StubParts {
  dir: string;
  stub: StubChain;
  exec: ExecProc;
  api: Awaited<ReturnType<typeof startDevSubnetApi>>;
  wallet: { address: string; privateKey: string };
  /** Stops the executor, the subnet-api and the stub; removes `dir`. */
  stop(): Promise<void>;
}

/** The stub chain, the executor (`window` slots, 0 ms tasks) and the dev subnet-api; the daemon not yet. */
export async function startStubParts(window: number): Promise<StubParts> {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-bench-stub-'));
  const wallet = devAccounts(2)[1] as { address: string; privateKey: string };
  // The batch executor's code at its pinned address: wcp delegates and batches as on a chain that has it.
  const stub = startStubChain(wallet.address, {
    executorCode: (await compileContracts()).WcpBatchExecutor.deployedBytecode,
  });
  const api = await startDevSubnetApi({ dataDir: join(dir, 'blobs'), logger: quietLogger('subnet-api') });
  const exec = await startExecProc(window, 0);
  return {
    dir,
    stub,
    exec,
    api,
    wallet,
    async stop() {
      await exec.stop();
      await api.stop();
      stub.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A running daemon on the stub parts. */
export interface StubDaemon {
  w: WcpProcess;
  sb: Sandbox;
  /** Waits for the first completion through the daemon (60 s at most). */
  firstCompletion(): Promise<void>;
  /** Stops the daemon (its output kept with WCP_BENCH_LOG_DIR) and removes its sandbox; the parts run on. */
  stop(): Promise<void>;
}

/** Starts dist/wcp on `p` with the shared settings, then `settings`, and `env` (not config) for the process. */
export function startStubDaemon(
  p: StubParts,
  window: number,
  settings: Record<string, string> = {},
  env: Record<string, string> = {},
): StubDaemon {
  const sb = sandbox();
  const shared = {
    WCP__ETHEREUM__MULTICALL3_ADDRESS: STUB_ADDRESSES.multicall3,
    WCP__ETHEREUM__SUBNET_CONTROL_PLANE_ADDRESS: STUB_ADDRESSES.subnetControlPlane,
    WCP__ETHEREUM__TASK_QUEUE_ADDRESS: STUB_ADDRESSES.taskQueue,
    WCP__ETHEREUM__WORKFLOW_ENGINE_ADDRESS: STUB_ADDRESSES.workflowEngine,
    WCP__EXECUTOR__ENDPOINT: `127.0.0.1:${p.exec.port}`,
    WCP__SUBNET_API__GRPC_ENDPOINT: p.api.grpcEndpoint,
    WCP__SCHEDULER__MAX_INFLIGHT: String(window),
    WCP__SCHEDULER__POLL_INTERVAL: '100ms',
    WCP__SCHEDULER__POLL_BATCH: '128',
    WCP__SCHEDULER__CLAIM_BATCH: '64',
    WCP__TX_POLICY__MAX_IN_FLIGHT: '1024',
    WCP__TX_POLICY__RECEIPT_POLL: '20ms',
    WCP__TX_POLICY__BUMP_AFTER: '60s',
    WCP__TX_POLICY__BUMP_AFTER_BLOCKS: '0',
    WCP__TX_POLICY__BATCH: 'auto',
    // Profiling (debug): bun's options for the daemon (e.g. --cpu-prof, main thread), and a directory where each
    // worker thread writes its own profile (src/runtime/thread-profile.ts).
    ...(process.env.WCP_BENCH_BUN_OPTIONS ? { BUN_OPTIONS: process.env.WCP_BENCH_BUN_OPTIONS } : {}),
    ...(process.env.WCP_DEBUG_CPU_PROF_DIR ? { WCP_DEBUG_CPU_PROF_DIR: process.env.WCP_DEBUG_CPU_PROF_DIR } : {}),
  };
  const w = startWcp(sb, ['run'], {
    ...wcpEnv({ rpcUrl: p.stub.url, privateKey: p.wallet.privateKey }, BENCH_SETTINGS, shared, settings),
    ...env,
  });
  return {
    w,
    sb,
    async firstCompletion() {
      const deadline = Date.now() + 60_000;
      while (p.stub.completedAt.length === 0) {
        if (Date.now() > deadline || w.proc.exitCode !== null)
          throw new Error(
            `no completion through the daemon in 60 s (stub unknown calls ${JSON.stringify(p.stub.unknown)}):\n${w.output().slice(-3000)}`,
          );
        await sleep(100);
      }
    },
    async stop() {
      await stopWcp(w, 5000);
      sb.cleanup();
    },
  };
}
