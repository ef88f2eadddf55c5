/**
 * Fast paths for the ABI work done per activity and per poll round, with ethers as the reference:
 *
 * - `decodeResult(iface, name, data)`: a function's return data, read straight off the hex string. ethers' decoder
 *   copies the whole buffer on every word it reads (its inflation check builds its error's details eagerly) and
 *   copies the rest of the buffer for every dynamic element, so a Multicall3 `aggregate3` result of 100 sub-calls
 *   cost tens of milliseconds. The fast path reads only the canonical form (offsets and lengths in bounds, padding
 *   in place, uintN without high bits, bools 0 or 1, addresses without high bytes, strings valid UTF-8); anything
 *   else — and every type it does not know — is handed to ethers' own `decodeFunctionResult`, so the values
 *   accepted and the errors raised are ethers' exactly. Values: uints as bigint, bools, strings, bytes as
 *   lower-case hex, tuples and arrays as plain arrays; addresses lower-case (ethers checksums them: callers
 *   compare lower-case).
 * - `encodeCall(iface, name, args)`: calldata with the function's selector computed once (ethers recomputes it, a
 *   keccak of the signature, on every `encodeFunctionData`, and looks the function up by name each time).
 * - `eventTopic(iface, name)`: an event's topic0, computed once.
 */
import { AbiCoder, type EventFragment, type FunctionFragment, type Interface, type ParamType } from 'ethers';

/** The data is not in the canonical form the fast path reads: ethers decides. */
class NotCanonical extends Error {}

const HEX_RE = /^0x[0-9a-fA-F]*$/;
const ZERO_WORD = '0'.repeat(64);
const ONE_WORD = `${'0'.repeat(63)}1`;
/** ethers' limit on bytes read per byte of data (its "inflation" check). */
const MAX_INFLATION = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface Reader {
  /** Lower-case hex without 0x. */
  h: string;
  /** Bytes. */
  size: number;
  /** Bytes read, as ethers counts them. */
  read: number;
}

function word(r: Reader, pos: number): string {
  if (pos + 32 > r.size) throw new NotCanonical();
  r.read += 32;
  return r.h.slice(pos * 2, pos * 2 + 64);
}

/** An offset or a length: a safe integer. */
function index(r: Reader, pos: number): number {
  const w = word(r, pos);
  // 50 zero digits: below 2^56; then the safe-integer check ethers' toNumber makes.
  if (!w.startsWith(ZERO_WORD.slice(0, 50))) throw new NotCanonical();
  const n = Number.parseInt(w.slice(50), 16);
  if (n > Number.MAX_SAFE_INTEGER) throw new NotCanonical();
  return n;
}

function isDynamic(t: ParamType): boolean {
  if (t.baseType === 'string' || t.baseType === 'bytes') return true;
  if (t.baseType === 'array') return t.arrayLength === -1 || isDynamic(t.arrayChildren as ParamType);
  if (t.baseType === 'tuple') return (t.components as readonly ParamType[]).some(isDynamic);
  return false;
}

/** A static value of one word at `pos`. */
function staticValue(r: Reader, pos: number, t: ParamType): unknown {
  const w = word(r, pos);
  const type = t.type;
  if (type === 'bool') {
    if (w === ZERO_WORD) return false;
    if (w === ONE_WORD) return true;
    throw new NotCanonical();
  }
  if (type === 'address') {
    if (!w.startsWith(ZERO_WORD.slice(0, 24))) throw new NotCanonical();
    return `0x${w.slice(24)}`;
  }
  if (type.startsWith('uint')) {
    const bits = type === 'uint' ? 256 : Number(type.slice(4));
    if (!w.startsWith(ZERO_WORD.slice(0, 64 - bits / 4))) throw new NotCanonical();
    return BigInt(`0x${w}`);
  }
  throw new NotCanonical();
}

/** The values of `types` laid out as a tuple whose head starts at `base`. */
function unpack(r: Reader, base: number, types: readonly ParamType[]): unknown[] {
  const out: unknown[] = [];
  let pos = base;
  for (const t of types) {
    if (isDynamic(t)) {
      out.push(dynamicValue(r, base + index(r, pos), t));
    } else if (t.baseType === 'tuple' || t.baseType === 'array') {
      throw new NotCanonical(); // static tuples and fixed arrays: not needed here, ethers reads them
    } else {
      out.push(staticValue(r, pos, t));
    }
    pos += 32;
  }
  return out;
}

/** A dynamic value whose encoding starts at `start`. */
function dynamicValue(r: Reader, start: number, t: ParamType): unknown {
  if (t.baseType === 'tuple') return unpack(r, start, t.components as readonly ParamType[]);
  if (t.baseType === 'array') {
    if (t.arrayLength !== -1) throw new NotCanonical();
    const n = index(r, start);
    if (start + 32 + n * 32 > r.size) throw new NotCanonical();
    return unpack(
      r,
      start + 32,
      Array.from({ length: n }, () => t.arrayChildren as ParamType),
    );
  }
  const len = index(r, start);
  const from = start + 32;
  if (from + Math.ceil(len / 32) * 32 > r.size) throw new NotCanonical();
  r.read += len;
  const hex = r.h.slice(from * 2, (from + len) * 2);
  if (t.baseType === 'bytes') return `0x${hex}`;
  try {
    return utf8.decode(Buffer.from(hex, 'hex'));
  } catch {
    throw new NotCanonical();
  }
}

const functions = new WeakMap<Interface, Map<string, { fragment: FunctionFragment; selector: string }>>();

function fn(iface: Interface, name: string): { fragment: FunctionFragment; selector: string } {
  let byName = functions.get(iface);
  if (!byName) {
    byName = new Map();
    functions.set(iface, byName);
  }
  let f = byName.get(name);
  if (!f) {
    const fragment = iface.getFunction(name);
    if (!fragment) throw new Error(`unknown function ${name}`);
    f = { fragment, selector: fragment.selector };
    byName.set(name, f);
  }
  return f;
}

/** `iface.decodeFunctionResult(name, data)`, on the fast path when the data is canonical (see the file's note). */
export function decodeResult(iface: Interface, name: string, data: string): readonly unknown[] {
  const { fragment } = fn(iface, name);
  if (data.length % 64 === 2 && HEX_RE.test(data)) {
    const r: Reader = { h: data.slice(2).toLowerCase(), size: (data.length - 2) / 2, read: 0 };
    try {
      const out = unpack(r, 0, fragment.outputs);
      if (r.read <= MAX_INFLATION * r.size) return out;
    } catch (e) {
      if (!(e instanceof NotCanonical)) throw e;
    }
  }
  return iface.decodeFunctionResult(fragment, data);
}

const coder = AbiCoder.defaultAbiCoder();

/** `iface.encodeFunctionData(name, args)` with the selector computed once per function. */
export function encodeCall(iface: Interface, name: string, args: readonly unknown[]): string {
  const { fragment, selector } = fn(iface, name);
  return selector + coder.encode(fragment.inputs, args).slice(2);
}

const topics = new WeakMap<Interface, Map<string, { fragment: EventFragment; topic: string }>>();

/** An event's fragment and topic0 (lower-case hex), computed once. */
export function eventOf(iface: Interface, name: string): { fragment: EventFragment; topic: string } {
  let byName = topics.get(iface);
  if (!byName) {
    byName = new Map();
    topics.set(iface, byName);
  }
  let e = byName.get(name);
  if (!e) {
    const fragment = iface.getEvent(name);
    if (!fragment) throw new Error(`unknown event ${name}`);
    e = { fragment, topic: fragment.topicHash.toLowerCase() };
    byName.set(name, e);
  }
  return e;
}
