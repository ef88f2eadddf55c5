/**
 * The doctor's chain checks, sending no transaction: every RPC endpoint (real cause of a failure, chain id, head
 * and lag), code at every contract address including Multicall3 and a call proving it is the right contract, that
 * the node can execute them (an `eth_estimateGas` of an empty heartbeat batch), the wallet's registration and
 * active flag, what it is delegated to (EIP-7702) and the batch mode that gives, whether the TaskQueue has ever seen `scheduler.queue_name`, its balance against the gas of a few activity lifecycles at current fees, and the local clock
 * against chain time; with `ethereum.ws_url`, that its new-head subscription comes up.
 */
import type { Interface } from 'ethers';
import { controlPlaneIface, multicallIface, taskQueueIface, workflowEngineIface } from '../chain/abi.ts';
import {
  acceptsType4,
  BATCH_EXECUTOR,
  describeDelegation,
  executorDeployed,
  readDelegation,
} from '../chain/batch-executor.ts';
import { RpcError, type RpcTransport } from '../chain/transport.ts';
import { queueIdSlot } from '../chain/deployment.ts';
import { probeHeads } from '../chain/heads.ts';
import type { WcpConfig } from '../config/load.ts';
import { createLogger } from '../internal/logger.ts';
import { displayUrl } from '../internal/redact.ts';
import { heartbeatEveryS } from '../lifecycle/liveness.ts';
import { type CheckResult, fail, pass, warn } from './check.ts';
import { endpointName, rpcProbe } from './rpc-probe.ts';

/**
 * Gas of one activity's whole lifecycle on the reference contracts, measured from receipts (README, Benchmarks):
 * claim ~76k alone, six heartbeats ~33k each alone, complete ~135k, resume ~260k — rounded up.
 */
export const LIFECYCLE_GAS = 700_000n;
/** Below this many lifecycles the wallet fails the check; below `FUNDED_LIFECYCLES` it is a warning. */
export const MIN_LIFECYCLES = 3n;
export const FUNDED_LIFECYCLES = 10n;

const hexNum = (x: unknown): bigint => BigInt(typeof x === 'string' ? x : '0x0');
const short = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;

async function call(url: string, timeoutMs: number, to: string, iface: Interface, fn: string, args: unknown[] = []) {
  const r = await rpcProbe(url, 'eth_call', [{ to, data: iface.encodeFunctionData(fn, args) }, 'latest'], timeoutMs);
  if (!r.ok) return { ok: false as const, cause: r.cause };
  if (r.result === '0x') return { ok: false as const, cause: 'empty answer (no such function there)' };
  try {
    return { ok: true as const, value: iface.decodeFunctionResult(fn, r.result as string) };
  } catch (e) {
    return { ok: false as const, cause: `answer does not decode as ${fn}: ${(e as Error).message.slice(0, 120)}` };
  }
}

/** The chain checks, in order; later checks are skipped (not failed twice) when no endpoint answers. */
export async function chainChecks(config: WcpConfig): Promise<CheckResult[]> {
  const eth = config.ethereum;
  const t = Math.min(eth.requestTimeoutMs, 10_000);
  const out: CheckResult[] = [];
  let primary: string | undefined;
  const heads: Array<{ name: string; head: bigint }> = [];
  for (const [i, url] of eth.rpcUrls.entries()) {
    const name = `rpc ${endpointName(url, i)}`;
    const id = await rpcProbe(url, 'eth_chainId', [], t);
    if (!id.ok) {
      out.push(
        fail(name, id.cause, 'check ethereum.rpc_url / rpc_urls, that the node runs and this host may reach it'),
      );
      continue;
    }
    const chainId = Number(hexNum(id.result));
    if (chainId !== eth.chainId) {
      out.push(
        fail(
          name,
          `chain id ${chainId}, expected ${eth.chainId}`,
          'point the endpoint at the right network or fix ethereum.chain_id',
        ),
      );
      continue;
    }
    const bn = await rpcProbe(url, 'eth_blockNumber', [], t);
    if (!bn.ok) {
      out.push(fail(name, bn.cause, 'the node answers eth_chainId but not eth_blockNumber: is it syncing?'));
      continue;
    }
    heads.push({ name, head: hexNum(bn.result) });
    primary ??= url;
    out.push(pass(name, `chain id ${chainId}, head ${hexNum(bn.result)}, ${id.ms} ms`));
  }
  if (heads.length > 1) {
    // biome-ignore lint/complexity/useMathMinMax: bigints (Math.max takes numbers)
    const best = heads.reduce((m, h) => (h.head > m ? h.head : m), 0n);
    for (const h of heads) {
      const lag = best - h.head;
      if (lag > BigInt(config.txPolicy.maxLagBlocks)) {
        out.push(
          warn(
            `${h.name} lag`,
            `${lag} blocks behind the best endpoint`,
            'a lagging endpoint is not read from; check its sync',
          ),
        );
      }
    }
  }
  if (eth.wsUrl) {
    // A warning, not a failure: without the push wcp still claims, only up to a poll interval later.
    const name = `new heads ${displayUrl(eth.wsUrl)}`;
    const r = await probeHeads(eth.wsUrl, t, createLogger('doctor', { write: () => {} }));
    out.push(
      r.ok
        ? pass(name, 'eth_subscribe newHeads answers')
        : warn(
            name,
            r.cause,
            'check ethereum.ws_url (a ws:// or wss:// endpoint with subscriptions) or set it to "" to poll only',
          ),
    );
  }
  if (!primary) return out;
  const url = primary;

  const contracts: Array<[string, string, string]> = [
    ['Multicall3', eth.multicall3, 'ethereum.multicall3_address'],
    ['SubnetControlPlane', eth.subnetControlPlane, 'ethereum.subnet_control_plane_address'],
    ['TaskQueue', eth.taskQueue, 'ethereum.task_queue_address'],
    ['WorkflowEngine', eth.workflowEngine, 'ethereum.workflow_engine_address'],
  ];
  const hasCode = new Set<string>();
  for (const [label, addr, key] of contracts) {
    const code = await rpcProbe(url, 'eth_getCode', [addr, 'latest'], t);
    if (!code.ok) out.push(fail(`code at ${label}`, code.cause, 'retry when the node answers'));
    else if (code.result === '0x' || code.result === '0x0')
      out.push(
        fail(
          `code at ${label}`,
          `no contract code at ${addr}${label === 'Multicall3' ? ' (the canonical Multicall3 is not deployed on this chain)' : ''}`,
          `set ${key} to the address where ${label} is deployed on chain ${eth.chainId}`,
        ),
      );
    else {
      hasCode.add(label);
      out.push(pass(`code at ${label}`, `${short(addr)}: ${((code.result as string).length - 2) / 2} bytes`));
    }
  }

  const proofs: Array<[string, () => Promise<CheckResult>]> = [
    [
      'Multicall3',
      async () => {
        const r = await call(url, t, eth.multicall3, multicallIface, 'getBlockNumber');
        return r.ok
          ? pass('Multicall3 answers', `getBlockNumber() = ${r.value[0]}`)
          : fail(
              'Multicall3 answers',
              r.cause,
              'ethereum.multicall3_address must be a Multicall3 (aggregate3, getBlockNumber)',
            );
      },
    ],
    [
      'SubnetControlPlane',
      async () => {
        const r = await call(url, t, eth.subnetControlPlane, controlPlaneIface, 'taskQueue');
        if (!r.ok)
          return fail(
            'SubnetControlPlane is the right contract',
            r.cause,
            'check ethereum.subnet_control_plane_address',
          );
        const q = String(r.value[0]).toLowerCase();
        return q === eth.taskQueue.toLowerCase()
          ? pass('SubnetControlPlane is the right contract', `its taskQueue() is ${short(eth.taskQueue)}`)
          : fail(
              'SubnetControlPlane is the right contract',
              `its taskQueue() is ${q}, not ${eth.taskQueue}`,
              'the two addresses belong to different deployments: fix one of them',
            );
      },
    ],
    [
      'TaskQueue',
      async () => {
        const r = await call(url, t, eth.taskQueue, taskQueueIface, 'controlPlane');
        if (!r.ok) return fail('TaskQueue is the right contract', r.cause, 'check ethereum.task_queue_address');
        const cp = String(r.value[0]).toLowerCase();
        if (cp !== eth.subnetControlPlane.toLowerCase()) {
          return fail(
            'TaskQueue is the right contract',
            `its controlPlane() is ${cp}, not ${eth.subnetControlPlane}`,
            'the two addresses belong to different deployments: fix one of them',
          );
        }
        const hb = await call(url, t, eth.taskQueue, taskQueueIface, 'defaultHeartbeatTimeout');
        const timeoutS = hb.ok ? Number(hb.value[0]) : 0;
        const intervalS = config.scheduler.heartbeatIntervalMs / 1000;
        const everyS = heartbeatEveryS(config.scheduler.heartbeatIntervalMs, timeoutS);
        if (everyS < intervalS) {
          return warn(
            'TaskQueue is the right contract',
            `default heartbeat timeout ${timeoutS} s; scheduler.heartbeat_interval ${intervalS} s is more than a third of it (wcp then heartbeats every ${Math.floor(everyS)} s)`,
            'lower scheduler.heartbeat_interval to a third of the timeout or less',
          );
        }
        return pass(
          'TaskQueue is the right contract',
          `controlPlane() matches; default heartbeat timeout ${timeoutS} s`,
        );
      },
    ],
    [
      'WorkflowEngine',
      async () => {
        const r = await call(url, t, eth.workflowEngine, workflowEngineIface, 'taskQueue');
        if (!r.ok)
          return fail('WorkflowEngine is the right contract', r.cause, 'check ethereum.workflow_engine_address');
        const q = String(r.value[0]).toLowerCase();
        return q === eth.taskQueue.toLowerCase()
          ? pass('WorkflowEngine is the right contract', `its taskQueue() is ${short(eth.taskQueue)}`)
          : fail(
              'WorkflowEngine is the right contract',
              `its taskQueue() is ${q}, not ${eth.taskQueue}`,
              'the two addresses belong to different deployments: fix one of them',
            );
      },
    ],
  ];
  for (const [label, run] of proofs) if (hasCode.has(label)) out.push(await run());

  if (hasCode.has('TaskQueue')) {
    const est = await rpcProbe(
      url,
      'eth_estimateGas',
      [{ from: eth.walletAddress, to: eth.taskQueue, data: taskQueueIface.encodeFunctionData('heartbeatBatch', [[]]) }],
      t,
    );
    out.push(
      est.ok
        ? pass('node executes the contracts', `eth_estimateGas(heartbeatBatch([])) = ${hexNum(est.result)} gas`)
        : fail(
            'node executes the contracts',
            est.cause,
            "the node's EVM cannot run TaskQueue (hard fork or client too old?): use another node or client version",
          ),
    );
  }
  if (hasCode.has('TaskQueue')) {
    const q = config.scheduler.queueName;
    const slot = await rpcProbe(url, 'eth_getStorageAt', [eth.taskQueue, queueIdSlot(q), 'latest'], t);
    const name = 'queue known to the TaskQueue';
    if (!slot.ok) out.push(fail(name, slot.cause, 'retry when the node answers'));
    else if (hexNum(slot.result) === 0n)
      out.push(
        fail(
          name,
          `scheduler.queue_name ${JSON.stringify(q)}: nothing was ever enqueued on it at TaskQueue ${short(eth.taskQueue)}, so wcp would poll it and never find work`,
          'set scheduler.queue_name to the queue the subnet enqueues on (names are case-sensitive), or start wcp once the first activity is enqueued there',
        ),
      );
    else out.push(pass(name, `scheduler.queue_name ${JSON.stringify(q)} is queue #${hexNum(slot.result)}`));
  }
  if (hasCode.has('SubnetControlPlane')) {
    const w = await call(url, t, eth.subnetControlPlane, controlPlaneIface, 'getWorker', [eth.walletAddress]);
    if (!w.ok) out.push(fail('worker registered and active', w.cause, 'check ethereum.subnet_control_plane_address'));
    else {
      const rec = w.value[0] as { registered: boolean; active: boolean };
      if (!rec.registered)
        out.push(
          fail(
            'worker registered and active',
            `${eth.walletAddress} is not registered`,
            `ask the subnet owner to register ${eth.walletAddress} (registerWorker)`,
          ),
        );
      else if (!rec.active)
        out.push(
          fail(
            'worker registered and active',
            `${eth.walletAddress} is registered but not active`,
            `ask the subnet owner to activate ${eth.walletAddress} (setWorkerActive)`,
          ),
        );
      else out.push(pass('worker registered and active', eth.walletAddress));
    }
  }

  out.push(await delegationCheck(config, url, t));

  const [bal, gp] = await Promise.all([
    rpcProbe(url, 'eth_getBalance', [eth.walletAddress, 'latest'], t),
    rpcProbe(url, 'eth_gasPrice', [], t),
  ]);
  if (!bal.ok || !gp.ok)
    out.push(fail('wallet funded', !bal.ok ? bal.cause : !gp.ok ? gp.cause : '', 'retry when the node answers'));
  else {
    const balance = hexNum(bal.result);
    const price = hexNum(gp.result);
    const per = LIFECYCLE_GAS * price;
    const lifecycles = per === 0n ? FUNDED_LIFECYCLES * 1000n : balance / per;
    const eth18 = (wei: bigint) => `${Number(wei) / 1e18} ETH`;
    const detail = `balance ${eth18(balance)}; one activity lifecycle ≈ ${LIFECYCLE_GAS} gas × ${Number(price) / 1e9} gwei = ${eth18(per)}; enough for ${lifecycles}`;
    const fix = `send ETH to ${eth.walletAddress} (at least ${eth18(per * FUNDED_LIFECYCLES)} for ${FUNDED_LIFECYCLES} lifecycles at today's fees)`;
    if (lifecycles < MIN_LIFECYCLES) out.push(fail('wallet funded', detail, fix));
    else if (lifecycles < FUNDED_LIFECYCLES) out.push(warn('wallet funded', detail, fix));
    else out.push(pass('wallet funded', detail));
  }

  const block = await rpcProbe(url, 'eth_getBlockByNumber', ['latest', false], t);
  if (block.ok && block.result && typeof block.result === 'object') {
    const chainS = Number(hexNum((block.result as { timestamp?: string }).timestamp));
    const skew = Math.round(Date.now() / 1000 - chainS);
    const detail = `local clock ${skew >= 0 ? 'ahead of' : 'behind'} the latest block by ${Math.abs(skew)} s`;
    const fix = 'sync the host clock (NTP, e.g. systemd-timesyncd or chrony); expiry and URL lifetimes depend on it';
    if (Math.abs(skew) > 300) out.push(fail('clock', detail, fix));
    else if (Math.abs(skew) > 30)
      out.push(warn('clock', `${detail} (a quiet chain mines no blocks: then this is expected)`, fix));
    else out.push(pass('clock', detail));
  }
  return out;
}

/** `rpcProbe` as a transport (a node's refusal is an `rpc` RpcError, no answer a `transport` one). */
function probeTransport(url: string, timeoutMs: number): RpcTransport {
  return {
    async request<T>(method: string, params: unknown[]): Promise<T> {
      const r = await rpcProbe(url, method, params, timeoutMs);
      if (!r.ok) throw new RpcError(r.rpcError ? 'rpc' : 'transport', method, r.cause);
      return r.result as T;
    },
  };
}

/**
 * What the wallet is delegated to (EIP-7702) and the batch mode `wcp run` would take (`src/supervisor/batch-mode.ts`),
 * read without sending anything: a foreign delegate is a warning (batching stays off for it).
 */
export async function delegationCheck(config: WcpConfig, url: string, timeoutMs: number): Promise<CheckResult> {
  const name = 'delegation and batching';
  const eth = config.ethereum;
  const rpc = probeTransport(url, timeoutMs);
  try {
    const d = await readDelegation(rpc, eth.walletAddress);
    const seen = `delegated to ${describeDelegation(d)}`;
    if (config.txPolicy.batch === 'off')
      return pass(name, `${seen}; tx_policy.batch = "off": one transaction per call`);
    if (d.kind === 'foreign')
      return warn(
        name,
        `${seen}, not the pinned executor ${BATCH_EXECUTOR.address}: wcp will not batch (and never re-delegates it)`,
        'if that delegation is not needed, `wcp key undelegate` revokes it (wcp then delegates to its executor at the next start); or set tx_policy.batch = "off"',
      );
    if (d.kind === 'pinned') return pass(name, `${seen}: lifecycle calls are batched`);
    const type4 = await acceptsType4(rpc, eth.walletAddress, eth.chainId);
    if (!type4.accepted)
      return pass(
        name,
        `${seen}; the chain does not accept type-4 transactions (${type4.reason}): one transaction per call`,
      );
    if (!(await executorDeployed(rpc)))
      return warn(
        name,
        `${seen}; the chain accepts type-4 transactions but the pinned batch executor is not deployed at ${BATCH_EXECUTOR.address}: one transaction per call`,
        'deploy it (anyone can: the creation code sent to the deterministic deployment proxy with the pinned salt, see scripts/lib/deploy.ts deployBatchExecutor), or set tx_policy.batch = "off"',
      );
    return pass(
      name,
      `${seen}; wcp delegates it to the pinned executor ${BATCH_EXECUTOR.address} at start and batches`,
    );
  } catch (e) {
    return fail(name, e instanceof Error ? e.message : String(e), 'retry when the node answers');
  }
}
