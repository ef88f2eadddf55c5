/**
 * The contracts of the STUB chain (benchmark only; see stub-chain.ts): the reference TaskQueue's rules for the
 * calls dist/wcp makes (an endless queue of pending standalone `bench.task` activities behind `pollActivity`;
 * claims, heartbeats, completions and failures with the contract's events), the control plane's worker check and
 * Multicall3's aggregate3. No EVM: each function is decoded with the daemon's ABIs and answered here.
 */
import { AbiCoder } from 'ethers';
import { controlPlaneIface, multicallIface, taskQueueIface, workflowEngineIface } from '../../src/chain/abi.ts';

/** Addresses the stub serves the contracts at (anything non-empty for eth_getCode). */
export const STUB_ADDRESSES = {
  multicall3: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  subnetControlPlane: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
  taskQueue: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
  workflowEngine: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
} as const;

interface Act {
  status: number;
  worker: string;
  claimedAt: number;
  lastHb: number;
  finishedAt: number;
  resultRef: string;
}

/** What a call did: its return data, the events it emitted (when applied) and whether it succeeded. */
export interface ExecResult {
  ret: string;
  /** `address`: the emitter when it is not the called contract (a batch's calls, its failure events). */
  events: Array<{ address?: string; topics: string[]; data: string }>;
  ok: boolean;
}

/** The chain state the contracts read and report to. */
export interface StubContext {
  worker: string;
  t0: number;
  nowTs(): number;
  blockNumber(): number;
  completedAt: number[];
  unknown: Record<string, number>;
}

const lower = (a: string) => a.toLowerCase();

/** The contracts' state and `exec(to, data, from, apply)`: a call (`apply` false) or a mined transaction. */
export function createStubContracts(c: StubContext): {
  exec(to: string, data: string, from: string, apply: boolean): ExecResult;
} {
  const { worker, t0, nowTs, completedAt, unknown } = c;
  const acts = new Map<bigint, Act>();
  let head = 1n; // lowest id that may still be pending
  const abi = AbiCoder.defaultAbiCoder();
  const addrs = Object.fromEntries(Object.entries(STUB_ADDRESSES).map(([k, v]) => [lower(v), k]));
  const act = (id: bigint): Act => {
    let a = acts.get(id);
    if (!a) {
      a = {
        status: 1,
        worker: '0x0000000000000000000000000000000000000000',
        claimedAt: 0,
        lastHb: 0,
        finishedAt: 0,
        resultRef: '',
      };
      acts.set(id, a);
    }
    return a;
  };
  const view = (id: bigint) => {
    const a = act(id);
    const expired = a.status === 2 && nowTs() > a.lastHb + 600;
    return [
      id,
      'default',
      0n,
      0,
      'bench.task',
      'json:{}',
      a.status,
      a.worker,
      BigInt(t0),
      BigInt(a.claimedAt),
      BigInt(a.lastHb),
      600n,
      BigInt(t0 + 10_800_000),
      BigInt(a.finishedAt),
      a.status === 3,
      expired,
      a.resultRef,
    ];
  };
  /** Decoded calldata by contract and bytes: the poller sends the same multicall every round, ethers' array
   * decoding of it was over half of the stub's CPU. Bounded: cleared when full. */
  const parsed = new Map<string, ReturnType<typeof taskQueueIface.parseTransaction>>();
  const parse = (iface: typeof taskQueueIface, kind: string, data: string) => {
    const key = `${kind}:${data}`;
    if (parsed.has(key)) return parsed.get(key) ?? null;
    const d = iface.parseTransaction({ data });
    if (parsed.size >= 20_000) parsed.clear();
    parsed.set(key, d);
    return d;
  };
  const ev = (name: string, args: unknown[]) => {
    const frag = taskQueueIface.getEvent(name);
    if (!frag) throw new Error(name);
    return taskQueueIface.encodeEventLog(frag, args);
  };

  /** Runs a TaskQueue/engine/control-plane/multicall function; `apply` commits state and returns events. */
  function exec(
    to: string,
    data: string,
    from: string,
    apply: boolean,
  ): { ret: string; events: Array<{ topics: string[]; data: string }>; ok: boolean } {
    const kind = addrs[lower(to)];
    const events: Array<{ topics: string[]; data: string }> = [];
    const w = lower(from);
    if (kind === 'multicall3') {
      const d = parse(multicallIface, 'multicall3', data);
      if (d?.name === 'aggregate3') {
        const calls = d.args[0] as Array<[string, boolean, string]>;
        const out = calls.map(([t, , cd]) => {
          const r = exec(t, cd, from, false);
          return [r.ok, r.ret];
        });
        return { ret: multicallIface.encodeFunctionResult('aggregate3', [out]), events, ok: true };
      }
      if (d?.name === 'getBlockNumber') return { ret: abi.encode(['uint256'], [c.blockNumber()]), events, ok: true };
      if (d?.name === 'getCurrentBlockTimestamp') return { ret: abi.encode(['uint256'], [nowTs()]), events, ok: true };
    }
    if (kind === 'subnetControlPlane') {
      const d = parse(controlPlaneIface, 'subnetControlPlane', data);
      if (d?.name === 'isWorkerActive')
        return { ret: abi.encode(['bool'], [lower(d.args[0] as string) === lower(worker)]), events, ok: true };
      if (d?.name === 'taskQueue')
        return { ret: abi.encode(['address'], [STUB_ADDRESSES.taskQueue]), events, ok: true };
      if (d?.name === 'getWorker')
        return {
          ret: controlPlaneIface.encodeFunctionResult('getWorker', [[true, true, 10_000, 0, 0, 0]]),
          events,
          ok: true,
        };
    }
    if (kind === 'workflowEngine') {
      const d = parse(workflowEngineIface, 'workflowEngine', data);
      if (d?.name === 'taskQueue')
        return { ret: abi.encode(['address'], [STUB_ADDRESSES.taskQueue]), events, ok: true };
    }
    if (kind === 'taskQueue') {
      const d = parse(taskQueueIface, 'taskQueue', data);
      const enc = (vals: unknown[]) => taskQueueIface.encodeFunctionResult(d?.name as string, vals);
      switch (d?.name) {
        case 'controlPlane':
          return { ret: enc([STUB_ADDRESSES.subnetControlPlane]), events, ok: true };
        case 'defaultHeartbeatTimeout':
          return { ret: enc([600]), events, ok: true };
        case 'activityLifetime':
          return { ret: enc([10_800]), events, ok: true };
        case 'activityCount':
          return { ret: enc([head + 1_000_000n]), events, ok: true };
        case 'pollActivity': {
          let off = BigInt(d.args[1] as bigint);
          while (act(head).status !== 1) head++;
          let id = head;
          for (;;) {
            if (act(id).status === 1) {
              if (off === 0n) break;
              off--;
            }
            id++;
          }
          return { ret: enc([true, id, 'bench.task', 'json:{}', BigInt(t0 + 10_800_000)]), events, ok: true };
        }
        case 'getActivity':
          return { ret: enc([view(BigInt(d.args[0] as bigint))]), events, ok: true };
        case 'getWorkerActivities': {
          const ids = [...acts.entries()]
            .filter(([, a]) => a.status === 2 && lower(a.worker) === lower(d.args[0] as string))
            .map(([i]) => i);
          return { ret: enc([ids]), events, ok: true };
        }
        case 'claimActivity':
        case 'claimActivities': {
          const ids = d.name === 'claimActivity' ? [BigInt(d.args[0] as bigint)] : (d.args[0] as bigint[]).map(BigInt);
          let n = 0;
          for (const id of ids) {
            const a = act(id);
            if (a.status !== 1) continue;
            n++;
            if (apply) {
              Object.assign(a, { status: 2, worker: from, claimedAt: nowTs(), lastHb: nowTs() });
              events.push(ev('ActivityClaimed', [id, from]));
            }
          }
          if (d.name === 'claimActivity' && n === 0) return { ret: '0x', events, ok: false };
          return { ret: d.name === 'claimActivity' ? '0x' : enc([n]), events, ok: true };
        }
        case 'heartbeat':
        case 'heartbeatBatch': {
          const ids = d.name === 'heartbeat' ? [BigInt(d.args[0] as bigint)] : (d.args[0] as bigint[]).map(BigInt);
          let n = 0;
          for (const id of ids) {
            const a = act(id);
            if (a.status !== 2 || lower(a.worker) !== w) continue;
            n++;
            if (apply) {
              a.lastHb = nowTs();
              events.push(ev('ActivityHeartbeat', [id, from]));
            }
          }
          return { ret: d.name === 'heartbeat' ? '0x' : enc([n]), events, ok: true };
        }
        case 'completeActivity':
        case 'failActivity': {
          const id = BigInt(d.args[0] as bigint);
          const a = act(id);
          if (a.status !== 2 || lower(a.worker) !== w) return { ret: '0x', events, ok: false };
          if (apply) {
            Object.assign(a, {
              status: d.name === 'completeActivity' ? 3 : 4,
              finishedAt: nowTs(),
              resultRef: String(d.args[1]),
            });
            events.push(
              ev(d.name === 'completeActivity' ? 'ActivityCompleted' : 'ActivityFailed', [id, from, String(d.args[1])]),
            );
            if (d.name === 'completeActivity') completedAt.push(performance.now());
          }
          return { ret: '0x', events, ok: true };
        }
      }
    }
    const key = `${kind ?? to}.${data.slice(0, 10)}`;
    unknown[key] = (unknown[key] ?? 0) + 1;
    return { ret: '0x', events, ok: false };
  }
  return { exec };
}
