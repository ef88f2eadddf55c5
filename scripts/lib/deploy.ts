/**
 * Deploys the reference contract stack (Multicall3, SubnetControlPlane, TaskQueue, WorkflowEngine) and offers
 * the helpers dev scripts, tests and benchmarks use to seed it: register workers, enqueue activities in bulk,
 * start workflows.
 *
 * Every transaction from one key goes through one `LaneSigner` (an ethers NonceManager that also hands out
 * blocks of nonces), so the helpers work with automine, with `--block-time` and with mining off (they send all
 * transactions first, then wait for the receipts).
 *
 * On a fresh anvil with deployer = anvil account 0 the addresses are `ANVIL_DEFAULT_ADDRESSES`: deploys use
 * nonces 0–3 in the fixed order Multicall3, SubnetControlPlane, TaskQueue, WorkflowEngine; nonces 4–5 are the
 * wiring transactions `controlPlane.setTaskQueue(taskQueue)` and `taskQueue.setEnqueuer(workflowEngine, true)`.
 */
import {
  Contract,
  ContractFactory,
  type Interface,
  JsonRpcProvider,
  type Log,
  Network,
  NonceManager,
  type Provider,
  type TransactionReceipt,
  type TransactionRequest,
  type TransactionResponse,
  Wallet,
  concat,
  getCreateAddress,
  keccak256,
} from 'ethers';
import { BATCH_EXECUTOR, DETERMINISTIC_DEPLOYER } from '../../src/chain/batch-executor.ts';
import { BATCH_EXECUTOR_CODE } from '../../src/chain/batch-executor-code.ts';
import { rpcCall } from './anvil.ts';
import { type CompiledContracts, compileContracts } from './contracts.ts';

/** Default heartbeat timeout for activities enqueued with heartbeatTimeout 0, seconds. */
export const DEFAULT_HEARTBEAT_TIMEOUT_S = 60;
/** Default activity lifetime (after enqueue and again after claim), seconds: 3 h. */
export const DEFAULT_LIFETIME_S = 10_800;

/** Addresses of a `deployStack` on a fresh anvil with deployer = anvil account 0 (nonces 0–3). */
export const ANVIL_DEFAULT_ADDRESSES = {
  multicall3: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  subnetControlPlane: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
  taskQueue: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
  workflowEngine: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
} as const;

export interface StackAddresses {
  subnetControlPlane: string;
  taskQueue: string;
  workflowEngine: string;
  multicall3: string;
}

export interface StackContracts {
  subnetControlPlane: Contract;
  taskQueue: Contract;
  workflowEngine: Contract;
  multicall3: Contract;
}

/**
 * An ethers NonceManager that can reserve a block of nonces synchronously and that re-reads the node's pending
 * nonce after a failed send (a send that fails in gas estimation would otherwise leave a nonce gap and stall
 * every later transaction).
 *
 * Sends without a gasLimit get the estimate plus 20% + 10k: a raw estimate can be too tight, e.g. a heartbeat
 * estimated in the claim's second rewrites `lastHeartbeatAt` with the same value (a ~100-gas no-op SSTORE)
 * while the mined transaction, one second later, pays ~2.9k for it and runs out of gas.
 */
export class LaneSigner extends NonceManager {
  /** Reserves `count` consecutive nonces; resolves to the first. The reservation itself is synchronous. */
  reserve(count: number): Promise<number> {
    const first = this.getNonce('pending');
    for (let i = 0; i < count; i++) this.increment();
    return first;
  }

  override async sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    try {
      if (tx.gasLimit == null) tx = { ...tx, gasLimit: withGasMargin(await this.estimateGas(tx)) };
      return await super.sendTransaction(tx);
    } catch (err) {
      this.reset();
      throw err;
    }
  }
}

/** `estimate` + 20% + 10k gas. */
export function withGasMargin(estimate: bigint): bigint {
  return (estimate * 6n) / 5n + 10_000n;
}

export interface Stack {
  addresses: StackAddresses;
  /** Contracts with the compiled (full) ABIs, connected to `deployer`. */
  contracts: StackContracts;
  provider: JsonRpcProvider;
  /** The deployer (owner of the control plane and the queue); its nonces come from this lane only. */
  deployer: LaneSigner;
  chainId: number;
  compiled: CompiledContracts;
  heartbeatTimeoutS: number;
  lifetimeS: number;
  /** Stops the provider (no timers are left behind). */
  destroy(): void;
}

export interface DeployOptions {
  rpcUrl: string;
  /** 0x-prefixed private key; the deployer becomes the owner of everything. */
  deployerKey: string;
  /** Default heartbeat timeout in seconds (default 60). */
  heartbeatTimeoutS?: number;
  /** Activity lifetime in seconds (default 10800 = 3 h). */
  lifetimeS?: number;
  /** Receipt wait limit (default 60 s). */
  timeoutMs?: number;
  /**
   * Also deploy the EIP-7702 batch executor at its pinned CREATE2 address (`deployBatchExecutor`). Default true: a
   * wcp with `tx_policy.batch = "auto"` on a chain that accepts type-4 transactions then delegates and batches;
   * false leaves such a wcp on the per-call path.
   */
  batchExecutor?: boolean;
}

/**
 * Creates a provider for `rpcUrl` with a fixed chain id (no network detection) and fast polling.
 * ethers' 250 ms result cache is disabled: it would hand back a stale pending nonce right after a lane reset,
 * and a stale `eth_estimateGas` result for an identical call made before a state change or time travel.
 */
export async function createProvider(rpcUrl: string): Promise<{ provider: JsonRpcProvider; chainId: number }> {
  const chainId = Number(BigInt(await rpcCall<string>(rpcUrl, 'eth_chainId')));
  const provider = new JsonRpcProvider(rpcUrl, Network.from(chainId), {
    staticNetwork: true,
    pollingInterval: 50,
    cacheTimeout: -1,
  });
  return { provider, chainId };
}

/** A lane signer for `privateKey` on `provider` (e.g. a worker key in tests and benchmarks). */
export function laneSigner(privateKey: string, provider: Provider): LaneSigner {
  return new LaneSigner(new Wallet(privateKey, provider));
}

/** Deploys and wires the stack. Sends all six transactions first, then waits for their receipts. */
export async function deployStack(opts: DeployOptions): Promise<Stack> {
  const heartbeatTimeoutS = opts.heartbeatTimeoutS ?? DEFAULT_HEARTBEAT_TIMEOUT_S;
  const lifetimeS = opts.lifetimeS ?? DEFAULT_LIFETIME_S;
  const compiled = await compileContracts();
  const { provider, chainId } = await createProvider(opts.rpcUrl);
  const deployer = laneSigner(opts.deployerKey, provider);
  const from = await deployer.getAddress();

  const nonce0 = await deployer.reserve(6);
  const addresses: StackAddresses = {
    multicall3: getCreateAddress({ from, nonce: nonce0 }),
    subnetControlPlane: getCreateAddress({ from, nonce: nonce0 + 1 }),
    taskQueue: getCreateAddress({ from, nonce: nonce0 + 2 }),
    workflowEngine: getCreateAddress({ from, nonce: nonce0 + 3 }),
  };

  const deployData = async (name: keyof CompiledContracts, args: unknown[]): Promise<string> => {
    const { abi, bytecode } = compiled[name];
    const tx = await new ContractFactory(abi as never, bytecode).getDeployTransaction(...args);
    return tx.data;
  };
  const contracts = attachContracts(compiled, addresses, deployer);
  const requests: TransactionRequest[] = [
    { data: await deployData('Multicall3', []) },
    { data: await deployData('SubnetControlPlane', []) },
    { data: await deployData('TaskQueue', [addresses.subnetControlPlane, heartbeatTimeoutS, lifetimeS]) },
    { data: await deployData('WorkflowEngine', [addresses.taskQueue]) },
    {
      to: addresses.subnetControlPlane,
      data: contracts.subnetControlPlane.interface.encodeFunctionData('setTaskQueue', [addresses.taskQueue]),
      // The target does not exist yet at estimation time: fixed limits for the wiring calls.
      gasLimit: 100_000n,
    },
    {
      to: addresses.taskQueue,
      data: contracts.taskQueue.interface.encodeFunctionData('setEnqueuer', [addresses.workflowEngine, true]),
      gasLimit: 100_000n,
    },
  ];
  // Constructors do not read other contracts, so each deploy estimates on its own.
  for (const req of requests) {
    if (req.gasLimit === undefined) req.gasLimit = ((await provider.estimateGas({ ...req, from })) * 12n) / 10n;
  }
  const receipts = await sendAndWait(
    { provider, signer: deployer, chainId },
    requests,
    nonce0,
    opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs },
  );
  receipts.slice(0, 4).forEach((r, i) => {
    const expected = Object.values(addresses)[i];
    if (r.contractAddress?.toLowerCase() !== expected?.toLowerCase()) {
      throw new Error(`deploy #${i} landed at ${r.contractAddress}, expected ${expected}`);
    }
  });
  if (opts.batchExecutor ?? true) await deployBatchExecutor({ provider, signer: deployer, chainId });

  return {
    addresses,
    contracts,
    provider,
    deployer,
    chainId,
    compiled,
    heartbeatTimeoutS,
    lifetimeS,
    destroy: () => provider.destroy(),
  };
}

/**
 * Deploys the EIP-7702 batch executor (`WcpBatchExecutor`) at its pinned address: the embedded creation code
 * (`src/chain/batch-executor-code.ts`, what the binary knows) sent with the fixed salt to the deterministic
 * deployment proxy (CREATE2). Idempotent: code already there is only checked. Throws when the chain has no
 * deployment proxy or the code that lands is not the pinned one. Resolves to whether it deployed.
 */
export async function deployBatchExecutor(sender: Sender): Promise<boolean> {
  const codeHash = async () => {
    const code = await sender.provider.getCode(BATCH_EXECUTOR.address);
    return code === '0x' ? undefined : keccak256(code).toLowerCase();
  };
  const check = (hash: string | undefined) => {
    if (hash !== BATCH_EXECUTOR.codeHash)
      throw new Error(
        `the code at ${BATCH_EXECUTOR.address} has hash ${hash ?? '(none)'}, not the pinned ${BATCH_EXECUTOR.codeHash}`,
      );
  };
  const before = await codeHash();
  if (before !== undefined) {
    check(before);
    return false;
  }
  if ((await sender.provider.getCode(DETERMINISTIC_DEPLOYER)) === '0x')
    throw new Error(`no deterministic deployment proxy at ${DETERMINISTIC_DEPLOYER} on chain ${sender.chainId}`);
  await sendMany(sender, [
    { to: DETERMINISTIC_DEPLOYER, data: concat([BATCH_EXECUTOR_CODE.salt, BATCH_EXECUTOR_CODE.initCode]) },
  ]);
  check(await codeHash());
  return true;
}

/** Contract instances for `addresses`, with the compiled ABIs, connected to `runner`. */
export function attachContracts(
  compiled: CompiledContracts,
  addresses: StackAddresses,
  runner: LaneSigner | Provider,
): StackContracts {
  return {
    subnetControlPlane: new Contract(addresses.subnetControlPlane, compiled.SubnetControlPlane.abi as never, runner),
    taskQueue: new Contract(addresses.taskQueue, compiled.TaskQueue.abi as never, runner),
    workflowEngine: new Contract(addresses.workflowEngine, compiled.WorkflowEngine.abi as never, runner),
    multicall3: new Contract(addresses.multicall3, compiled.Multicall3.abi as never, runner),
  };
}

// ------------------------------------------------------------------------------------------------ seeding

/** Registers `worker` (active) with `capacity` in the control plane; resolves once mined. */
export async function registerWorker(stack: Stack, worker: string, capacity: number): Promise<TransactionReceipt> {
  const data = stack.contracts.subnetControlPlane.interface.encodeFunctionData('registerWorker', [worker, capacity]);
  const [receipt] = await sendFromDeployer(stack, [{ to: stack.addresses.subnetControlPlane, data }]);
  if (!receipt) throw new Error('registerWorker: no receipt');
  return receipt;
}

export interface EnqueueOptions {
  queue: string;
  count: number;
  /** Default 'echo'. */
  activityType?: string;
  /** Default ''. */
  inputRef?: string;
  /** Seconds; default 0 = the queue's default heartbeat timeout. */
  heartbeatTimeoutS?: number;
  /** Receipt wait limit (default 60 s + 20 ms per transaction). */
  timeoutMs?: number;
}

/**
 * Enqueues `count` standalone activities (workflowInstance 0, step 0) from the deployer. All transactions are
 * sent with consecutive nonces before any receipt is awaited. Resolves to the activity ids in nonce order.
 */
export async function enqueueActivities(stack: Stack, opts: EnqueueOptions): Promise<bigint[]> {
  if (opts.count <= 0) return [];
  const tq = stack.contracts.taskQueue;
  const data = tq.interface.encodeFunctionData('enqueueActivity', [
    opts.queue,
    0n,
    0,
    opts.activityType ?? 'echo',
    opts.inputRef ?? '',
    opts.heartbeatTimeoutS ?? 0,
  ]);
  const requests = Array.from({ length: opts.count }, () => ({ to: stack.addresses.taskQueue, data }));
  const receipts = await sendFromDeployer(stack, requests, waitOptions(opts.timeoutMs, opts.count));
  return receipts.map((r) => {
    const ids = eventArgs(tq.interface, r.logs, stack.addresses.taskQueue, 'ActivityEnqueued').map((a) =>
      BigInt(a.activityId as bigint),
    );
    const [id] = ids;
    if (id === undefined) throw new Error(`enqueueActivity tx ${r.hash} emitted no ActivityEnqueued`);
    return id;
  });
}

export interface WorkflowStepInput {
  activityType: string;
  /** Empty: the step takes the previous step's resultRef as input. */
  inputRef?: string;
  /** Seconds; 0 = the queue's default. */
  heartbeatTimeoutS?: number;
}

export interface StartWorkflowsOptions {
  queue: string;
  count: number;
  /** The steps of every workflow, or a step count: N steps of `activityType` (step 0 gets `inputRef`). */
  steps: number | WorkflowStepInput[];
  /** For numeric `steps`; default 'echo'. */
  activityType?: string;
  /** For numeric `steps`: step 0's inputRef; default ''. */
  inputRef?: string;
  timeoutMs?: number;
}

export interface StartedWorkflow {
  instanceId: bigint;
  /** The activity enqueued for step 0. */
  activityId: bigint;
}

/** Starts `count` workflows from the deployer (all sent before any receipt is awaited), in nonce order. */
export async function startWorkflows(stack: Stack, opts: StartWorkflowsOptions): Promise<StartedWorkflow[]> {
  if (opts.count <= 0) return [];
  const steps: WorkflowStepInput[] =
    typeof opts.steps === 'number'
      ? Array.from({ length: opts.steps }, (_, i) => ({
          activityType: opts.activityType ?? 'echo',
          inputRef: i === 0 ? (opts.inputRef ?? '') : '',
        }))
      : opts.steps;
  const wf = stack.contracts.workflowEngine;
  const data = wf.interface.encodeFunctionData('startWorkflow', [
    opts.queue,
    steps.map((s) => [s.activityType, s.inputRef ?? '', s.heartbeatTimeoutS ?? 0]),
  ]);
  const requests = Array.from({ length: opts.count }, () => ({ to: stack.addresses.workflowEngine, data }));
  const receipts = await sendFromDeployer(stack, requests, waitOptions(opts.timeoutMs, opts.count));
  const tqi = stack.contracts.taskQueue.interface;
  return receipts.map((r) => {
    const started = eventArgs(wf.interface, r.logs, stack.addresses.workflowEngine, 'WorkflowStarted')[0];
    const enqueued = eventArgs(tqi, r.logs, stack.addresses.taskQueue, 'ActivityEnqueued')[0];
    if (!started || !enqueued) throw new Error(`startWorkflow tx ${r.hash} is missing its events`);
    return { instanceId: BigInt(started.instanceId as bigint), activityId: BigInt(enqueued.activityId as bigint) };
  });
}

// ------------------------------------------------------------------------------------------------ sending

export interface WaitOptions {
  /** Give up waiting for receipts after this long (default 60 s). */
  timeoutMs?: number;
  /** Receipt polling interval (default 25 ms). */
  pollMs?: number;
}

/** Who sends: a lane signer, its provider and the chain id (for `sendMany`). */
export interface Sender {
  provider: Provider;
  signer: LaneSigner;
  chainId: number;
}

/**
 * Sends `requests` from the stack's deployer with consecutive nonces and waits for every receipt.
 * Requests without `gasLimit` share one estimate (of the first, against the latest state) plus a margin, so a
 * bulk of identical calls costs one `eth_estimateGas`. Throws if any transaction reverted.
 */
export async function sendFromDeployer(
  stack: Stack,
  requests: TransactionRequest[],
  wait: WaitOptions = {},
): Promise<TransactionReceipt[]> {
  const sender = { provider: stack.provider, signer: stack.deployer, chainId: stack.chainId };
  return await sendMany(sender, requests, wait);
}

/** `sendFromDeployer` for any lane signer (e.g. a worker in a benchmark). */
export async function sendMany(
  sender: Sender,
  requests: TransactionRequest[],
  wait: WaitOptions = {},
): Promise<TransactionReceipt[]> {
  if (requests.length === 0) return [];
  const from = await sender.signer.getAddress();
  const needsEstimate = requests.find((r) => r.gasLimit === undefined);
  let shared = 0n;
  if (needsEstimate) {
    // Margin: a later call in the batch may touch fresh storage slots the estimated one did not.
    const est = await sender.provider.estimateGas({ ...needsEstimate, from });
    shared = (est * 5n) / 4n + 50_000n;
  }
  const sized = requests.map((r) => (r.gasLimit === undefined ? { ...r, gasLimit: shared } : r));
  const nonce0 = await sender.signer.reserve(sized.length);
  return await sendAndWait(sender, sized, nonce0, wait);
}

/** Signs and broadcasts `requests` with nonces `nonce0…`, then polls for all receipts. */
async function sendAndWait(
  sender: Sender,
  requests: TransactionRequest[],
  nonce0: number,
  wait: WaitOptions,
): Promise<TransactionReceipt[]> {
  const fees = await feeCaps(sender.provider);
  const wallet = sender.signer.signer;
  const hashes: string[] = [];
  try {
    // Chunks keep the number of in-flight requests bounded; ethers batches each chunk into few HTTP calls.
    const CHUNK = 200;
    for (let start = 0; start < requests.length; start += CHUNK) {
      const chunk = requests.slice(start, start + CHUNK);
      const sent = await Promise.all(
        chunk.map((r, i) =>
          wallet.sendTransaction({ ...r, ...fees, type: 2, chainId: sender.chainId, nonce: nonce0 + start + i }),
        ),
      );
      hashes.push(...sent.map((t) => t.hash));
    }
  } catch (err) {
    // Some nonces were reserved but never used: let the lane re-read the node's pending nonce.
    sender.signer.reset();
    throw err;
  }
  const receipts = await waitForReceipts(sender.provider, hashes, wait);
  const failed = receipts.find((r) => r.status !== 1);
  if (failed) throw new Error(`transaction ${failed.hash} reverted (block ${failed.blockNumber})`);
  return receipts;
}

/**
 * EIP-1559 caps generous enough that a burst of transactions filling many blocks is not priced out by the
 * rising base fee (only base fee + tip is charged).
 */
async function feeCaps(provider: Provider): Promise<{ maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }> {
  const block = await provider.getBlock('latest');
  const base = block?.baseFeePerGas ?? 1_000_000_000n;
  const tip = 1_000_000_000n;
  const floor = 10_000_000_000n;
  const cap = base * 32n > floor ? base * 32n : floor;
  return { maxFeePerGas: cap + tip, maxPriorityFeePerGas: tip };
}

/** Polls until every hash has a receipt; resolves to the receipts in the order of `hashes`. */
export async function waitForReceipts(
  provider: Provider,
  hashes: string[],
  opts: WaitOptions = {},
): Promise<TransactionReceipt[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const pollMs = opts.pollMs ?? 25;
  const out = new Map<string, TransactionReceipt>();
  for (;;) {
    const missing = hashes.filter((h) => !out.has(h));
    if (missing.length === 0) break;
    for (let start = 0; start < missing.length; start += 500) {
      const got = await Promise.all(missing.slice(start, start + 500).map((h) => provider.getTransactionReceipt(h)));
      for (const r of got) if (r) out.set(r.hash, r);
    }
    if (out.size === hashes.length) break;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${hashes.length - out.size} of ${hashes.length} receipts`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return hashes.map((h) => out.get(h) as TransactionReceipt);
}

/** Decoded args of the `event` logs emitted by `address`. */
export function eventArgs(iface: Interface, logs: readonly Log[], address: string, event: string) {
  const topic = iface.getEvent(event)?.topicHash;
  const out: Record<string, unknown>[] = [];
  for (const log of logs) {
    if (log.address.toLowerCase() !== address.toLowerCase() || log.topics[0] !== topic) continue;
    const parsed = iface.parseLog(log);
    if (parsed) out.push(parsed.args.toObject());
  }
  return out;
}

function waitOptions(timeoutMs: number | undefined, count: number): WaitOptions {
  return { timeoutMs: timeoutMs ?? 60_000 + 20 * count };
}
