/**
 * Read-only chain access for the startup checks and the Poller: the chain-id check, the worker registration
 * check, and batched queue polls through Multicall3. (Block-pinned activity/workflow reads for the lifecycle and
 * the reconciler are in `src/reconciler/chain.ts`.) Several endpoints may be given: a
 * call goes to the first that answers (the last good one is tried first next time). Chain data is untrusted:
 * decoded values are checked and a bad one is a `CHAIN_BAD_DATA` error naming what was wrong.
 */
import { Contract, Interface, JsonRpcProvider, Network } from 'ethers';
import { WcpError } from '../internal/errors.ts';
import { MULTICALL3_ABI, SUBNET_CONTROL_PLANE_ABI, TASK_QUEUE_ABI } from './abi.ts';

export interface ChainAddresses {
  subnetControlPlane: string;
  taskQueue: string;
  workflowEngine: string;
  multicall3: string;
}

export interface ReaderOptions {
  rpcUrls: string[];
  chainId: number;
  addresses: ChainAddresses;
  timeoutMs?: number;
}

/** One available activity as `pollActivity` reports it. */
export interface PolledActivity {
  activityId: string;
  activityType: string;
  inputRef: string;
  expiresAtS: number;
}

export const taskQueueIface = new Interface(TASK_QUEUE_ABI);
export const controlPlaneIface = new Interface(SUBNET_CONTROL_PLANE_ABI);
export const multicallIface = new Interface(MULTICALL3_ABI);


const MAX_TEXT = 4096;

export function makeProvider(url: string, chainId: number, timeoutMs = 10_000): JsonRpcProvider {
  const provider = new JsonRpcProvider(url, Network.from(chainId), { staticNetwork: true, batchMaxCount: 1 });
  provider.pollingInterval = 250;
  // ethers' FetchRequest timeout applies per request.
  const conn = provider._getConnection();
  conn.timeout = timeoutMs;
  return provider;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new WcpError('CHAIN_BAD_DATA', `chain returned a non-string ${field}`);
  if (value.length > MAX_TEXT) throw new WcpError('CHAIN_BAD_DATA', `chain returned a ${field} of ${value.length} chars (max ${MAX_TEXT})`);
  return value;
}

function u64(field: string, value: unknown): number {
  const n = typeof value === 'bigint' ? value : BigInt(value as number);
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new WcpError('CHAIN_BAD_DATA', `chain returned ${field}=${n}, out of range`);
  return Number(n);
}

export interface ChainReader {
  readonly providers: JsonRpcProvider[];
  /** Throws CHAIN_UNREACHABLE or CHAIN_ID_MISMATCH. */
  checkChainId(): Promise<void>;
  isWorkerActive(worker: string): Promise<boolean>;
  /** Up to `count` available activities of `queue` from offset 0, in one Multicall3 round trip. */
  pollActivities(queue: string, count: number): Promise<PolledActivity[]>;
  blockNumber(): Promise<number>;
  destroy(): void;
}

export function createChainReader(opts: ReaderOptions): ChainReader {
  if (opts.rpcUrls.length === 0) throw new WcpError('CONFIG_INVALID', 'no RPC endpoint configured');
  const providers = opts.rpcUrls.map((u) => makeProvider(u, opts.chainId, opts.timeoutMs));
  let preferred = 0;

  async function call<T>(what: string, fn: (p: JsonRpcProvider) => Promise<T>): Promise<T> {
    let lastErr: unknown;
    for (let i = 0; i < providers.length; i++) {
      const idx = (preferred + i) % providers.length;
      try {
        const r = await fn(providers[idx]!);
        preferred = idx;
        return r;
      } catch (e) {
        if (e instanceof WcpError) throw e;
        // A revert or bad data is the chain's answer, not the endpoint's failure.
        const code = (e as { code?: string }).code;
        if (code === 'CALL_EXCEPTION' || code === 'BAD_DATA') {
          throw new WcpError('CHAIN_CALL_REVERTED', `${what} failed on chain: ${(e as Error).message.split('\n')[0]}`, { cause: e });
        }
        lastErr = e;
      }
    }
    throw new WcpError('CHAIN_UNREACHABLE', `${what}: no RPC endpoint answered`, {
      retryable: true,
      details: [lastErr instanceof Error ? lastErr.message.split('\n')[0]! : String(lastErr)],
      cause: lastErr,
    });
  }

  async function rawCall(p: JsonRpcProvider, to: string, data: string): Promise<string> {
    return await p.call({ to, data });
  }

  async function multicall(calls: Array<{ target: string; callData: string }>): Promise<Array<{ success: boolean; returnData: string }>> {
    const data = multicallIface.encodeFunctionData('aggregate3', [calls.map((c) => ({ ...c, allowFailure: true }))]);
    const out = await call('multicall aggregate3', (p) => rawCall(p, opts.addresses.multicall3, data));
    const [results] = multicallIface.decodeFunctionResult('aggregate3', out) as unknown as [Array<[boolean, string]>];
    return results.map((r) => ({ success: r[0], returnData: r[1] }));
  }

  return {
    providers,
    async checkChainId() {
      const hex = await call('eth_chainId', (p) => p.send('eth_chainId', []) as Promise<string>);
      const got = Number(BigInt(hex));
      if (got !== opts.chainId) {
        throw new WcpError('CHAIN_ID_MISMATCH', `the RPC endpoint is on chain ${got}, the config says ethereum.chain_id = ${opts.chainId}`);
      }
    },
    async isWorkerActive(worker) {
      const data = controlPlaneIface.encodeFunctionData('isWorkerActive', [worker]);
      const out = await call('isWorkerActive', (p) => rawCall(p, opts.addresses.subnetControlPlane, data));
      if (out === '0x') {
        throw new WcpError('CHAIN_BAD_DATA', `no SubnetControlPlane contract at ${opts.addresses.subnetControlPlane} (empty reply)`);
      }
      return Boolean(controlPlaneIface.decodeFunctionResult('isWorkerActive', out)[0]);
    },
    async pollActivities(queue, count) {
      const calls = Array.from({ length: count }, (_, i) => ({
        target: opts.addresses.taskQueue,
        callData: taskQueueIface.encodeFunctionData('pollActivity', [queue, i]),
      }));
      const results = await multicall(calls);
      const out: PolledActivity[] = [];
      const seen = new Set<string>();
      for (const r of results) {
        if (!r.success || r.returnData === '0x') break;
        const d = taskQueueIface.decodeFunctionResult('pollActivity', r.returnData);
        if (!d[0]) break;
        const id = (d[1] as bigint).toString();
        if (id === '0') throw new WcpError('CHAIN_BAD_DATA', 'pollActivity returned hasActivity with activity id 0');
        if (seen.has(id)) continue;
        seen.add(id);
        out.push({ activityId: id, activityType: text('activityType', d[2]), inputRef: text('inputRef', d[3]), expiresAtS: u64('expiresAt', d[4]) });
      }
      return out;
    },
    async blockNumber() {
      const hex = await call('eth_blockNumber', (p) => p.send('eth_blockNumber', []) as Promise<string>);
      return Number(BigInt(hex));
    },
    destroy() {
      for (const p of providers) p.destroy();
    },
  };
}

