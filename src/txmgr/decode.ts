/**
 * Revert decoding: turns revert data (from an RPC error or a replayed call) into `{ name, args, message }` using
 * every ABI in `src/chain/abi.ts`, plus the built-in `Error(string)` and `Panic(uint256)`.
 */
import type { Interface, Result } from 'ethers';
import { controlPlaneIface, multicallIface, taskQueueIface, workflowEngineIface } from '../chain/abi.ts';
import type { DecodedRevert } from './types.ts';

const ERROR_STRING = '0x08c379a0';
const PANIC = '0x4e487b71';

const PANIC_REASONS: Record<number, string> = {
  0x01: 'assertion failed',
  0x11: 'arithmetic overflow or underflow',
  0x12: 'division by zero',
  0x21: 'invalid enum value',
  0x31: 'pop on empty array',
  0x32: 'array index out of bounds',
  0x41: 'out of memory',
  0x51: 'call to a zero function',
};

/** Every contract interface whose custom errors a revert may carry. */
const INTERFACES: readonly Interface[] = [taskQueueIface, controlPlaneIface, workflowEngineIface, multicallIface];

function plain(v: unknown): string | number | boolean {
  if (typeof v === 'bigint') return v.toString(10);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  return String(v);
}

function argsOf(r: Result): Array<string | number | boolean> {
  return Array.from(r, (x) => plain(x));
}

/** Decodes revert data; never throws. */
export function decodeRevertData(data: string | undefined, fallbackMessage?: string): DecodedRevert {
  if (!data || data === '0x' || !/^0x[0-9a-fA-F]*$/.test(data)) {
    return { name: 'unknown', args: [], message: fallbackMessage ?? 'reverted without data' };
  }
  const selector = data.slice(0, 10).toLowerCase();
  const abi = taskQueueIface;
  try {
    if (selector === ERROR_STRING) {
      const [reason] = abi.getAbiCoder().decode(['string'], `0x${data.slice(10)}`);
      return { name: 'Error', args: [String(reason)], message: `reverted: ${String(reason)}`, data };
    }
    if (selector === PANIC) {
      const [code] = abi.getAbiCoder().decode(['uint256'], `0x${data.slice(10)}`);
      const n = Number(code);
      return {
        name: 'Panic',
        args: [plain(code)],
        message: `panic 0x${n.toString(16)}: ${PANIC_REASONS[n] ?? 'unknown panic'}`,
        data,
      };
    }
  } catch {
    // fall through to custom errors / unknown
  }
  for (const iface of INTERFACES) {
    try {
      const e = iface.parseError(data);
      if (!e) continue;
      const args = argsOf(e.args);
      return { name: e.name, args, message: `reverted: ${e.name}(${args.join(', ')})`, data };
    } catch {
      // not this ABI (or malformed arguments): try the next
    }
  }
  return { name: 'unknown', args: [], message: fallbackMessage ?? `reverted with unknown error ${selector}`, data };
}

/**
 * Finds revert data inside an RPC error: `data` as a hex string (geth, anvil), `data.data`, `data.result`,
 * `data.originalError.data`, or an ethers error's `data`/`info.error.data`. Returns undefined if there is none.
 */
function revertDataOf(e: unknown, depth = 0): string | undefined {
  if (depth > 4 || e === null || e === undefined) return undefined;
  if (typeof e === 'string') return /^0x[0-9a-fA-F]*$/.test(e) && e.length >= 10 ? e : undefined;
  if (typeof e !== 'object') return undefined;
  const o = e as Record<string, unknown>;
  for (const k of ['data', 'result', 'originalError', 'error', 'info']) {
    const found = revertDataOf(o[k], depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Decodes the revert inside an RPC error (from eth_call/eth_estimateGas). */
export function decodeRevertError(e: unknown): DecodedRevert {
  const msg = e instanceof Error ? e.message : String(e);
  return decodeRevertData(revertDataOf(e), msg);
}
