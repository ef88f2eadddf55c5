/**
 * The store's in-memory mirror of some prefixes (`store.ts` invariants): the committed bytes of every record under
 * them, loaded at open and changed as commits resolve, with each record decoded once per bytes and schema. The
 * lifecycle lists and reads what it holds several times per tick; from LMDB each of those would be a range scan, a
 * copy and a compare (or a JSON parse and a validation) per record, O(held) per tick and so O(n²) over a burst.
 */
import type * as v from 'valibot';

// biome-ignore lint/suspicious/noExplicitAny: schemas of any record type
type Schema<T> = v.GenericSchema<any, T>;
type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** A stable id per schema object (schemas are module constants). */
const schemaIds = new WeakMap<object, number>();
let nextSchemaId = 1;
export function schemaId(schema: object): number {
  const known = schemaIds.get(schema);
  if (known !== undefined) return known;
  const id = nextSchemaId++;
  schemaIds.set(schema, id);
  return id;
}

/** Freezes a decoded value shared between callers: one changing it throws instead of corrupting the others. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

export interface Mirror {
  /** Whether `key` is under a mirrored prefix (then `raw` and `has` answer for it). */
  covers(key: string): boolean;
  /** Committed bytes of a mirrored key. */
  raw(key: string): Buffer | undefined;
  /** The keys of a mirrored prefix in LMDB's order (at most `limit`), or undefined for a prefix not mirrored. */
  keys(prefix: string, limit?: number): readonly string[] | undefined;
  /** A number that changes whenever a record under the mirrored `prefix` changes (undefined: not mirrored). */
  version(prefix: string): number | undefined;
  /** Sets (or, with null, drops) the committed bytes of `key`; ignored for keys not mirrored. */
  set(key: string, raw: Buffer | null): void;
  /** How many decoded values are kept (one per live key and schema: a dropped key's go with it). */
  decodedCount(): number;
  /** The value of mirrored bytes under `schema`, decoded (and frozen) once per bytes. */
  decode<T>(key: string, raw: Buffer, schema: Schema<T>, decode: (raw: Buffer, s: Schema<T>) => Decoded<T>): Decoded<T>;
}

/** A mirror of `prefixes`, filled from `range` (the committed records under a prefix, in key order). */
export function createMirror(
  prefixes: readonly string[],
  range: (prefix: string) => Iterable<{ key: string; value: Buffer }>,
): Mirror {
  const records = new Map<string, Map<string, Buffer>>();
  /** Prefix → its keys sorted, or null once a key came or went. */
  const order = new Map<string, string[] | null>();
  /** Schema id → key → the bytes and the frozen value decoded from them. */
  const decoded = new Map<number, Map<string, { raw: Buffer; value: unknown }>>();
  const prefixOf = (key: string) => prefixes.find((p) => key.startsWith(p));
  const versions = new Map<string, number>();

  for (const p of prefixes) {
    const m = new Map<string, Buffer>();
    for (const { key, value } of range(p)) m.set(key, Buffer.from(value));
    records.set(p, m);
    order.set(p, null);
    versions.set(p, 0);
  }

  return {
    covers: (key) => prefixOf(key) !== undefined,
    raw(key) {
      const p = prefixOf(key);
      return p === undefined ? undefined : records.get(p)?.get(key);
    },
    keys(prefix, limit) {
      const m = records.get(prefix);
      if (!m) return undefined;
      let keys = order.get(prefix);
      if (!keys) {
        // JS string order is LMDB's byte order for these ASCII keys.
        keys = [...m.keys()].sort();
        order.set(prefix, keys);
      }
      return limit && limit < keys.length ? keys.slice(0, limit) : keys;
    },
    set(key, raw) {
      const p = prefixOf(key);
      const m = p === undefined ? undefined : records.get(p);
      if (!m || p === undefined) return;
      versions.set(p, (versions.get(p) ?? 0) + 1);
      const had = m.has(key);
      if (raw) m.set(key, raw);
      else {
        m.delete(key);
        // Its decoded values go too: every activity ever held would otherwise stay cached for the process's life.
        for (const c of decoded.values()) c.delete(key);
      }
      if (had !== Boolean(raw)) order.set(p, null);
    },
    version: (prefix) => versions.get(prefix),
    decodedCount: () => {
      let n = 0;
      for (const c of decoded.values()) n += c.size;
      return n;
    },
    decode(key, raw, schema, decodeRaw) {
      const sid = schemaId(schema);
      let c = decoded.get(sid);
      if (!c) {
        c = new Map();
        decoded.set(sid, c);
      }
      const hit = c.get(key);
      if (hit && hit.raw === raw) return { ok: true, value: hit.value as never };
      const res = decodeRaw(raw, schema);
      if (res.ok) c.set(key, { raw, value: deepFreeze(res.value) });
      else c.delete(key);
      return res;
    },
  };
}
