/**
 * The EIP-7702 batch executor as wcp sees it: the pinned contract (address and runtime code hash, from the
 * embedded `batch-executor-code.ts`), the encodings of a batch (ERC-7821 `execute` in batch + try mode, the
 * executor's `simulate`), the per-call failures of a mined batch (`ERC7579TryExecuteFail` logs), what a wallet is
 * delegated to (`eth_getCode`: the designator `0xef0100 ‖ address`), and whether the chain accepts type-4
 * transactions at all. Pure but for the two reads, which take the transport.
 */
import { AbiCoder, getAddress, Interface, keccak256 } from 'ethers';
import { BATCH_EXECUTOR_CODE } from './batch-executor-code.ts';
import { RpcError, type RpcTransport } from './transport.ts';

/** The deterministic deployment proxy (Arachnid's CREATE2 factory): present on anvil and on most public chains. */
export const DETERMINISTIC_DEPLOYER = '0x4e59b44847b379578588920ca78fbf26c0b4956c';

/** The executor wcp delegates to: the same address and code on every chain (CREATE2 with a fixed salt). */
export const BATCH_EXECUTOR = Object.freeze({
  address: getAddress(BATCH_EXECUTOR_CODE.address),
  codeHash: BATCH_EXECUTOR_CODE.codeHash.toLowerCase(),
});

export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

export const BATCH_EXECUTOR_ABI = [
  'function execute(bytes32 mode, bytes executionData) payable',
  'function supportsExecutionMode(bytes32 mode) view returns (bool)',
  'function simulate(bytes executionData) returns (bool[] ok, bytes[] returnData)',
  'event ERC7579TryExecuteFail(uint256 batchExecutionIndex, bytes returndata)',
  'error AccountUnauthorized(address account)',
  'error UnsupportedExecutionMode()',
  'error ERC7579DecodingError()',
] as const;
export const batchExecutorIface = new Interface(BATCH_EXECUTOR_ABI);

/** ERC-7579 mode: call type batch (0x01), execution type try (0x01), no selector, no payload. */
export const MODE_BATCH_TRY = `0x0101${'00'.repeat(30)}`;
/** ERC-7579 mode: call type batch, default execution type (one failing call reverts the batch). */
export const MODE_BATCH_DEFAULT = `0x0100${'00'.repeat(30)}`;

/** One call of a batch (value is always 0: wcp never moves funds). */
export interface BatchCall {
  to: string;
  data: string;
}

const coder = AbiCoder.defaultAbiCoder();
const TRY_FAIL_TOPIC = batchExecutorIface.getEvent('ERC7579TryExecuteFail')?.topicHash as string;

/** ERC-7579 batch encoding: `abi.encode(Execution[])`, Execution = (address target, uint256 value, bytes callData). */
export function encodeExecutionData(calls: readonly BatchCall[]): string {
  return coder.encode(['tuple(address,uint256,bytes)[]'], [calls.map((c) => [c.to, 0n, c.data])]);
}

/** Calldata of the transaction to the wallet itself: `execute(MODE_BATCH_TRY, executionData)`. */
export function encodeExecute(calls: readonly BatchCall[]): string {
  return batchExecutorIface.encodeFunctionData('execute', [MODE_BATCH_TRY, encodeExecutionData(calls)]);
}

/** The calls of an `execute` calldata (either execution mode); throws when it is not one. */
export function decodeExecute(data: string): BatchCall[] {
  const p = batchExecutorIface.parseTransaction({ data });
  if (p?.name !== 'execute') throw new Error('not an execute call');
  const [list] = coder.decode(['tuple(address,uint256,bytes)[]'], p.args[1] as string) as unknown as [
    Array<[string, bigint, string]>,
  ];
  return list.map(([to, , d]) => ({ to, data: d }));
}

/** Calldata of the simulation (`eth_call` from the wallet to itself): `simulate(executionData)`. */
export function encodeSimulate(calls: readonly BatchCall[]): string {
  return batchExecutorIface.encodeFunctionData('simulate', [encodeExecutionData(calls)]);
}

/** A simulation's answer, per call index: whether the call succeeded and its return (or revert) data. */
export function decodeSimulate(returnData: string): { ok: boolean; returnData: string }[] {
  const [ok, data] = batchExecutorIface.decodeFunctionResult('simulate', returnData) as unknown as [
    boolean[],
    string[],
  ];
  return ok.map((o, i) => ({ ok: o, returnData: data[i] ?? '0x' }));
}

/**
 * The calls of a mined batch that failed: `ERC7579TryExecuteFail` logs emitted by `wallet` (the delegated code
 * runs as the wallet, so the wallet is the log's address), as call index → revert data.
 */
export function tryExecuteFailures(
  logs: readonly { address: string; topics: readonly string[]; data: string }[],
  wallet: string,
): Map<number, string> {
  const out = new Map<number, string>();
  const w = wallet.toLowerCase();
  for (const l of logs) {
    if (l.address.toLowerCase() !== w || l.topics[0]?.toLowerCase() !== TRY_FAIL_TOPIC) continue;
    const [index, data] = coder.decode(['uint256', 'bytes'], l.data) as unknown as [bigint, string];
    out.set(Number(index), data);
  }
  return out;
}

/** The EIP-7702 delegation designator's prefix: a delegated EOA's code is `0xef0100 ‖ delegate address`. */
export const DESIGNATOR_PREFIX = '0xef0100';

/** The code a wallet has once delegated to `target` (`0x` for the zero address: a revocation clears the code). */
export function designatorFor(target: string): string {
  return target.toLowerCase() === ZERO_ADDRESS ? '0x' : `${DESIGNATOR_PREFIX}${target.slice(2).toLowerCase()}`;
}

/**
 * What a wallet's code says: no code, a delegation to an address, or code that is not a designator (a contract,
 * not an EOA). Pure.
 */
export function parseDesignator(
  code: string,
): { kind: 'none' } | { kind: 'delegated'; delegate: string } | { kind: 'code' } {
  const c = code.toLowerCase();
  if (c === '0x' || c === '0x0' || c === '') return { kind: 'none' };
  if (c.length === 2 + 46 && c.startsWith(DESIGNATOR_PREFIX))
    return { kind: 'delegated', delegate: getAddress(`0x${c.slice(8)}`) };
  return { kind: 'code' };
}

/**
 * How lifecycle calls reach the chain, decided once at start (`src/supervisor/batch-mode.ts`): batched through the
 * wallet's delegation to the executor (one transaction to the wallet itself carries many calls), or one transaction
 * per call, with the reason.
 */
export type BatchMode = { mode: 'batch'; executor: string } | { mode: 'per-call'; reason: string };

/** What the wallet is delegated to: nothing, the pinned executor (address and code hash), or anything else. */
export type Delegation = { kind: 'none' } | { kind: 'pinned' } | { kind: 'foreign'; delegate: string };

/** Whether the pinned executor is deployed: code at its address whose hash is the pinned one. */
export async function executorDeployed(rpc: RpcTransport): Promise<boolean> {
  const code = await rpc.request<string>('eth_getCode', [BATCH_EXECUTOR.address, 'latest']);
  return code !== '0x' && keccak256(code).toLowerCase() === BATCH_EXECUTOR.codeHash;
}

/**
 * The wallet's delegation from `eth_getCode`. Pinned means the designator names the pinned address AND the code
 * there has the pinned hash; anything else delegated is foreign (a wallet holding contract code, impossible for a
 * key-held EOA, is reported as foreign too, with `delegate` saying so).
 */
export async function readDelegation(rpc: RpcTransport, wallet: string): Promise<Delegation> {
  const d = parseDesignator(await rpc.request<string>('eth_getCode', [wallet, 'latest']));
  if (d.kind === 'none') return d;
  if (d.kind === 'code') return { kind: 'foreign', delegate: `${wallet} holds contract code (not a delegation)` };
  if (d.delegate === BATCH_EXECUTOR.address && (await executorDeployed(rpc))) return { kind: 'pinned' };
  return { kind: 'foreign', delegate: d.delegate };
}

/** One line for logs and status: what the wallet is delegated to. */
export function describeDelegation(d: Delegation): string {
  if (d.kind === 'none') return 'none (a plain EOA)';
  if (d.kind === 'pinned') return `the pinned batch executor ${BATCH_EXECUTOR.address}`;
  return `a foreign delegate ${d.delegate}`;
}

/** A type-4 transaction's intrinsic gas is at least this (21000 + 25000 per authorization, EIP-7702). */
const MIN_TYPE4_GAS = 46_000n;

/**
 * Whether the chain accepts type-4 (EIP-7702) transactions, detected: `eth_estimateGas` of a type-4 transaction
 * from the wallet to itself with one (unsigned, dummy) authorization. A node that refuses it (`anvil --hardfork
 * cancun`: "Eip7702 is not supported"), or that ignores the authorization list (an estimate below the intrinsic gas
 * of one authorization), does not. A node that does not answer throws (the caller retries).
 */
export async function acceptsType4(
  rpc: RpcTransport,
  wallet: string,
  chainId: number,
): Promise<{ accepted: true } | { accepted: false; reason: string }> {
  const auth = {
    chainId: `0x${chainId.toString(16)}`,
    address: BATCH_EXECUTOR.address,
    nonce: '0x0',
    yParity: '0x0',
    r: '0x1',
    s: '0x1',
  };
  try {
    const gas = BigInt(
      await rpc.request<string>('eth_estimateGas', [
        { from: wallet, to: wallet, type: '0x4', authorizationList: [auth] },
      ]),
    );
    if (gas < MIN_TYPE4_GAS)
      return {
        accepted: false,
        reason: `the node ignored the authorization list (estimate ${gas} < ${MIN_TYPE4_GAS})`,
      };
    return { accepted: true };
  } catch (e) {
    if (e instanceof RpcError && e.kind === 'rpc') return { accepted: false, reason: e.message };
    throw e;
  }
}
