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

/** A 32-byte ABI word (64 hex digits) holding `n`. */
const word = (n: number): string => n.toString(16).padStart(64, '0');
/** Hex digits of `0x…` data, checked (a call's calldata reaches the chain: nothing malformed is encoded). */
function digits(data: string): string {
  if (!/^0x(?:[0-9a-fA-F]{2})*$/.test(data)) throw new Error(`not hex bytes: ${data.slice(0, 24)}`);
  return data.slice(2).toLowerCase();
}
/** `d` (hex digits of whole bytes) right-padded with zeros to whole 32-byte words. */
const padded = (d: string): string => (d.length % 64 === 0 ? d : d + '0'.repeat(64 - (d.length % 64)));

/** A function's selector, hex digits without `0x`. */
function selector(name: string): string {
  const f = batchExecutorIface.getFunction(name);
  if (!f) throw new Error(`no ${name} in the batch executor ABI`);
  return f.selector.slice(2);
}
const SELECTOR = { execute: selector('execute'), simulate: selector('simulate') };

/**
 * Hex digits (no `0x`) of the ERC-7579 batch encoding `abi.encode(Execution[])`, Execution = (address target,
 * uint256 value, bytes callData), value 0. Written by hand: ethers' coder spent a third of the daemon's main-thread
 * CPU on these, and a batch is encoded for its simulation and again for its transaction and estimate.
 */
function executionDigits(calls: readonly BatchCall[]): string {
  const heads: string[] = [];
  const tails: string[] = [];
  let offset = calls.length * 32;
  for (const c of calls) {
    const to = digits(c.to);
    if (to.length !== 40) throw new Error(`not an address: ${c.to}`);
    const d = digits(c.data);
    heads.push(word(offset));
    const tail = `${to.padStart(64, '0')}${word(0)}${word(96)}${word(d.length / 2)}${padded(d)}`;
    tails.push(tail);
    offset += tail.length / 2;
  }
  return `${word(32)}${word(calls.length)}${heads.join('')}${tails.join('')}`;
}

/** `bytes` as the last dynamic argument of a call: its length word and its padded contents. */
const bytesTail = (d: string): string => `${word(d.length / 2)}${padded(d)}`;

/** ERC-7579 batch encoding: `abi.encode(Execution[])`, Execution = (address target, uint256 value, bytes callData). */
export function encodeExecutionData(calls: readonly BatchCall[]): string {
  return `0x${executionDigits(calls)}`;
}

/** Calldata of the wallet's `execute(mode, executionData)`: try mode unless `mode` says otherwise. */
export function encodeExecute(calls: readonly BatchCall[], mode: string = MODE_BATCH_TRY): string {
  return `0x${SELECTOR.execute}${digits(mode)}${word(64)}${bytesTail(executionDigits(calls))}`;
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
  return `0x${SELECTOR.simulate}${word(32)}${bytesTail(executionDigits(calls))}`;
}

/**
 * A simulation's answer, per call index: whether the call succeeded and its return (or revert) data. Read by hand
 * (see `executionDigits`), bounds-checked: an answer that is not `(bool[], bytes[])` of one length throws.
 */
export function decodeSimulate(returnData: string): { ok: boolean; returnData: string }[] {
  const hex = digits(returnData);
  const at = (byte: number): number => {
    const w = hex.slice(byte * 2, byte * 2 + 64);
    if (w.length !== 64) throw new Error('simulate answer too short');
    const n = Number.parseInt(w, 16);
    if (!Number.isSafeInteger(n) || n > hex.length) throw new Error('simulate answer out of range');
    return n;
  };
  const okAt = at(0);
  const dataAt = at(32);
  const n = at(okAt);
  if (at(dataAt) !== n) throw new Error('simulate answer: lengths differ');
  const out: { ok: boolean; returnData: string }[] = [];
  for (let i = 0; i < n; i++) {
    const ok = at(okAt + 32 + i * 32);
    if (ok > 1) throw new Error('simulate answer: not a bool');
    const start = dataAt + 32 + at(dataAt + 32 + i * 32);
    const len = at(start);
    const body = hex.slice((start + 32) * 2, (start + 32 + len) * 2);
    if (body.length !== len * 2) throw new Error('simulate answer too short');
    out.push({ ok: ok === 1, returnData: `0x${body}` });
  }
  return out;
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
