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
 *   keccak of the signature, on every `encodeFunctionData`, and looks the function up by name each time), the
 *   arguments written straight as hex in the plain cases, ethers' encoder for the rest.
 * - `eventOf(iface, name)`: an event's fragment and topic0, computed once.
 */
import {
  AbiCoder,
  type EventFragment,
  type FunctionFragment,
  getAddress,
  type Interface,
  type ParamType,
} from 'ethers';

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

/** A value per (interface, name), made once: fragments, selectors and topics never change. */
function perName<T>(cache: WeakMap<Interface, Map<string, T>>, iface: Interface, name: string, make: () => T): T {
  let byName = cache.get(iface);
  if (!byName) {
    byName = new Map();
    cache.set(iface, byName);
  }
  let v = byName.get(name);
  if (v === undefined) {
    v = make();
    byName.set(name, v);
  }
  return v;
}

const functions = new WeakMap<Interface, Map<string, { fragment: FunctionFragment; selector: string }>>();

function fn(iface: Interface, name: string): { fragment: FunctionFragment; selector: string } {
  return perName(functions, iface, name, () => {
    const fragment = iface.getFunction(name);
    if (!fragment) throw new Error(`unknown function ${name}`);
    return { fragment, selector: fragment.selector };
  });
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
const DECIMAL_RE = /^(?:0|[1-9][0-9]*)$/;
const LOWER_ADDRESS_RE = /^0x[0-9a-f]{40}$/;
const BYTES_RE = /^0x(?:[0-9a-fA-F]{2})*$/;

/** Mixed-case addresses ethers accepted (a valid checksum): the daemon's few contract addresses. */
const checksummed = new Set<string>();
function checkedAddress(v: string): boolean {
  if (checksummed.has(v)) return true;
  try {
    if (getAddress(v) !== v) return false;
  } catch {
    return false;
  }
  if (checksummed.size < 1024) checksummed.add(v);
  return true;
}

/** ES2024 `String.prototype.isWellFormed` (Bun has it; this project's TypeScript lib does not declare it). */
const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();
const hexWord = (n: number | bigint): string => n.toString(16).padStart(64, '0');
const padRight = (hex: string): string => hex + '0'.repeat((64 - (hex.length % 64)) % 64);

/** One static value as a word of hex; the values ethers would accept in another form (or refuse) are not read. */
function encodeStatic(t: ParamType, v: unknown): string {
  const type = t.type;
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw new NotCanonical();
    return hexWord(v ? 1 : 0);
  }
  if (type === 'address') {
    if (typeof v !== 'string' || !(LOWER_ADDRESS_RE.test(v) || checkedAddress(v))) throw new NotCanonical();
    return ZERO_WORD.slice(0, 24) + v.slice(2).toLowerCase();
  }
  if (type.startsWith('uint')) {
    const bits = type === 'uint' ? 256 : Number(type.slice(4));
    let n: bigint;
    if (typeof v === 'bigint') n = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
    else if (typeof v === 'string' && DECIMAL_RE.test(v)) n = BigInt(v);
    else throw new NotCanonical();
    if (n < 0n || n >> BigInt(bits) !== 0n) throw new NotCanonical();
    return hexWord(n);
  }
  throw new NotCanonical();
}

/** A dynamic value's encoding (its tail). */
function encodeDynamic(t: ParamType, v: unknown): string {
  if (t.baseType === 'tuple') {
    const comps = t.components as readonly ParamType[];
    if (Array.isArray(v)) return pack(comps, v);
    if (!v || typeof v !== 'object') throw new NotCanonical();
    return pack(
      comps,
      comps.map((c) => (v as Record<string, unknown>)[c.name]),
    );
  }
  if (t.baseType === 'array') {
    if (t.arrayLength !== -1 || !Array.isArray(v)) throw new NotCanonical();
    return (
      hexWord(v.length) +
      pack(
        Array.from({ length: v.length }, () => t.arrayChildren as ParamType),
        v,
      )
    );
  }
  let hex: string;
  if (t.baseType === 'string') {
    if (typeof v !== 'string' || !wellFormed(v)) throw new NotCanonical(); // lone surrogates: ethers decides
    hex = Buffer.from(v, 'utf8').toString('hex');
  } else if (t.baseType === 'bytes') {
    if (typeof v !== 'string' || !BYTES_RE.test(v)) throw new NotCanonical();
    hex = v.slice(2).toLowerCase();
  } else throw new NotCanonical();
  return hexWord(hex.length / 2) + padRight(hex);
}

/** A tuple's encoding: the heads (static values, offsets of the dynamic ones), then the tails. */
function pack(types: readonly ParamType[], values: readonly unknown[]): string {
  if (types.length !== values.length) throw new NotCanonical();
  const heads: string[] = [];
  const tails: string[] = [];
  let tailBytes = types.length * 32;
  types.forEach((t, i) => {
    const v = values[i];
    if (v === undefined) throw new NotCanonical();
    if (isDynamic(t)) {
      const tail = encodeDynamic(t, v);
      heads.push(hexWord(tailBytes));
      tails.push(tail);
      tailBytes += tail.length / 2;
    } else if (t.baseType === 'tuple' || t.baseType === 'array') {
      throw new NotCanonical();
    } else heads.push(encodeStatic(t, v));
  });
  return heads.join('') + tails.join('');
}

/**
 * `iface.encodeFunctionData(name, args)`: the selector computed once per function, and the arguments written
 * straight as hex when they are in the plain forms the daemon passes (bigint, safe integers and decimal strings
 * for uints, lower-case addresses, well-formed strings, hex bytes, arrays and tuples of those); ethers encodes
 * anything else, so the calldata and the errors are ethers' own.
 */
export function encodeCall(iface: Interface, name: string, args: readonly unknown[]): string {
  const { fragment, selector } = fn(iface, name);
  try {
    return selector + pack(fragment.inputs, args);
  } catch (e) {
    if (!(e instanceof NotCanonical)) throw e;
  }
  return selector + coder.encode(fragment.inputs, args).slice(2);
}

const topics = new WeakMap<Interface, Map<string, { fragment: EventFragment; topic: string }>>();

/** An event's fragment and topic0 (lower-case hex), computed once. */
export function eventOf(iface: Interface, name: string): { fragment: EventFragment; topic: string } {
  return perName(topics, iface, name, () => {
    const fragment = iface.getEvent(name);
    if (!fragment) throw new Error(`unknown event ${name}`);
    return { fragment, topic: fragment.topicHash.toLowerCase() };
  });
}
