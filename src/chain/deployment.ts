/**
 * Whether the configured addresses are one deployment of the reference contracts, read through the transport:
 * code at each address, then a call proving each is the contract it is named as (Multicall3 answers
 * `getBlockNumber`, the control plane's `taskQueue()` is the TaskQueue, the TaskQueue's `controlPlane()` is the
 * control plane, the engine's `taskQueue()` is the TaskQueue). And whether the TaskQueue has ever seen a queue
 * name: its private `queueIdOf` mapping read by storage slot, exact and one request.
 */
import { AbiCoder, keccak256, toUtf8Bytes } from 'ethers';
import { controlPlaneIface, multicallIface, taskQueueIface, workflowEngineIface } from './abi.ts';
import type { RpcTransport } from './transport.ts';

/** The configured addresses, each with the config field it comes from. */
export interface DeploymentAddresses {
  multicall3: string;
  subnetControlPlane: string;
  taskQueue: string;
  workflowEngine: string;
}

/** One contract that is not what the config says: the field to fix, what was found, and the fix. */
export interface DeploymentProblem {
  field: string;
  contract: string;
  detail: string;
  fix: string;
}

const FIELDS: Array<[keyof DeploymentAddresses, string, string]> = [
  ['multicall3', 'Multicall3', 'ethereum.multicall3_address'],
  ['subnetControlPlane', 'SubnetControlPlane', 'ethereum.subnet_control_plane_address'],
  ['taskQueue', 'TaskQueue', 'ethereum.task_queue_address'],
  ['workflowEngine', 'WorkflowEngine', 'ethereum.workflow_engine_address'],
];

/** Every problem found (empty: one deployment). RPC failures throw (the caller retries or reports them). */
export async function checkDeployment(
  rpc: RpcTransport,
  a: DeploymentAddresses,
  chainId: number,
): Promise<DeploymentProblem[]> {
  const out: DeploymentProblem[] = [];
  const codes = await Promise.all(FIELDS.map(([k]) => rpc.request<string>('eth_getCode', [a[k], 'latest'])));
  const present = new Set<string>();
  FIELDS.forEach(([k, contract, field], i) => {
    const code = codes[i];
    if (code && code !== '0x' && code !== '0x0') present.add(contract);
    else
      out.push({
        field,
        contract,
        detail: `no contract code at ${a[k]}${contract === 'Multicall3' ? ' (the canonical Multicall3 is not deployed on this chain)' : ''}`,
        fix: `set ${field} to the address where ${contract} is deployed on chain ${chainId}`,
      });
  });
  const call = async (to: string, iface: typeof taskQueueIface, fn: string): Promise<string | undefined> => {
    try {
      const res = await rpc.request<string>('eth_call', [{ to, data: iface.encodeFunctionData(fn, []) }, 'latest']);
      if (res === '0x') return undefined;
      return String(iface.decodeFunctionResult(fn, res)[0]).toLowerCase();
    } catch {
      return undefined;
    }
  };
  const same = (x: string | undefined, y: string) => x !== undefined && x === y.toLowerCase();
  const different = 'the addresses belong to different deployments: set the one that is wrong';
  if (present.has('Multicall3') && (await call(a.multicall3, multicallIface, 'getBlockNumber')) === undefined)
    out.push({
      field: 'ethereum.multicall3_address',
      contract: 'Multicall3',
      detail: `${a.multicall3} does not answer getBlockNumber(): not a Multicall3`,
      fix: 'ethereum.multicall3_address must be a Multicall3 (aggregate3, getBlockNumber)',
    });
  if (present.has('TaskQueue')) {
    const cp = await call(a.taskQueue, taskQueueIface, 'controlPlane');
    if (!same(cp, a.subnetControlPlane))
      out.push({
        field: 'ethereum.task_queue_address',
        contract: 'TaskQueue',
        detail:
          cp === undefined
            ? `${a.taskQueue} does not answer controlPlane(): not a TaskQueue`
            : `the TaskQueue at ${a.taskQueue} belongs to control plane ${cp}, not ${a.subnetControlPlane}`,
        fix: cp === undefined ? 'set ethereum.task_queue_address to the TaskQueue of this subnet' : different,
      });
  }
  if (present.has('SubnetControlPlane')) {
    const q = await call(a.subnetControlPlane, controlPlaneIface, 'taskQueue');
    if (!same(q, a.taskQueue))
      out.push({
        field: 'ethereum.subnet_control_plane_address',
        contract: 'SubnetControlPlane',
        detail:
          q === undefined
            ? `${a.subnetControlPlane} does not answer taskQueue(): not a SubnetControlPlane`
            : `the control plane at ${a.subnetControlPlane} names TaskQueue ${q}, not ${a.taskQueue}`,
        fix: q === undefined ? "set ethereum.subnet_control_plane_address to this subnet's control plane" : different,
      });
  }
  if (present.has('WorkflowEngine')) {
    const q = await call(a.workflowEngine, workflowEngineIface, 'taskQueue');
    if (!same(q, a.taskQueue))
      out.push({
        field: 'ethereum.workflow_engine_address',
        contract: 'WorkflowEngine',
        detail:
          q === undefined
            ? `${a.workflowEngine} does not answer taskQueue(): not a WorkflowEngine`
            : `the engine at ${a.workflowEngine} names TaskQueue ${q}, not ${a.taskQueue}`,
        fix: q === undefined ? "set ethereum.workflow_engine_address to this subnet's WorkflowEngine" : different,
      });
  }
  return out;
}

/**
 * The storage slot of the TaskQueue's `queueIdOf[keccak256(name)]` (a `mapping(bytes32 => uint24)` declared sixth:
 * slot 5 in the reference contract's layout; `test/e2e-doctor.test.ts` reads it for a queue enqueued on and one never
 * seen, on a real deployment).
 */
export const QUEUE_ID_OF_SLOT = 5n;

/** The slot of the last name asked (the probes ask the same queue every round; two keccaks each). */
let lastSlot: { name: string; slot: string } | undefined;

/** The slot holding the queue's 1-based id (0: the TaskQueue has never seen the name). */
export function queueIdSlot(name: string): string {
  if (lastSlot?.name === name) return lastSlot.slot;
  const key = keccak256(toUtf8Bytes(name));
  const slot = keccak256(AbiCoder.defaultAbiCoder().encode(['bytes32', 'uint256'], [key, QUEUE_ID_OF_SLOT]));
  lastSlot = { name, slot };
  return slot;
}

/** Whether anything was ever enqueued on `name` at the TaskQueue (its queue id is set by the first enqueue). */
export async function queueKnown(rpc: RpcTransport, taskQueue: string, name: string): Promise<boolean> {
  const word = await rpc.request<string>('eth_getStorageAt', [taskQueue, queueIdSlot(name), 'latest']);
  return BigInt(word === '0x' ? '0x0' : word) !== 0n;
}
