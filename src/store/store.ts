/**
 * The LMDB store: one env at the configured path, values as UTF-8 JSON validated on every read. Owned by the
 * supervisor thread (the CLI opens it read-only for `wcp db scan`).
 *
 * Invariants:
 * - Every multi-key change is one LMDB transaction (`transact`), committed in a group with whatever else was
 *   queued in the same event turn; the promise resolves once the commit is durable (`durable: true` also awaits
 *   the OS flush, used before broadcasting a transaction).
 * - A record that does not decode or validate is moved to `quarantine:{key}` (raw bytes kept) and reported;
 *   reads then see it as absent. Nothing crashes on a bad record.
 * - The records under `MIRRORED_PREFIXES` (what the lifecycle holds) are also kept in memory, as committed: loaded
 *   at open, changed when a commit resolves (the moment a read of LMDB would see it too). Reads outside a
 *   transaction (`get`, `list`) of those keys are answered from memory; reads inside one still go to LMDB, which
 *   also sees writes of earlier transactions in the same batch. Only this store writes to the env.
 */
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import * as v from 'valibot';
import { WcpError } from '../internal/errors.ts';
import type { Logger } from '../internal/logger.ts';
import { PREFIX, quarantineKey } from './keys.ts';
import { inspectHeader, type WalkResult, walkStore } from './lmdb-file.ts';
import { storeHolder } from './lock.ts';
import { createMirror, deepFreeze, schemaId } from './mirror.ts';
import type { Quarantine } from './records.ts';

// biome-ignore lint/suspicious/noExplicitAny: schemas of any record type
export type Schema<T> = v.GenericSchema<any, T>;

/** Reads and writes inside one transaction. Writes are visible to later reads in the same callback. */
export interface StoreTx {
  get<T>(key: string, schema: Schema<T>): T | undefined;
  has(key: string): boolean;
  put(key: string, value: unknown): void;
  del(key: string): void;
}

export interface ScanEntry {
  key: string;
  /** Decoded JSON; undefined when the bytes are not JSON. */
  value: unknown;
  /** Set when the bytes do not decode. */
  error?: string;
}

export interface Store extends Omit<StoreTx, 'put' | 'del'> {
  readonly path: string;
  /** Runs `fn` atomically in a (group-)committed write transaction; resolves after the commit. */
  transact<T>(fn: (tx: StoreTx) => T, opts?: { durable?: boolean }): Promise<T>;
  /**
   * Validated records under a prefix, in key order; bad ones are quarantined and skipped. Read-only: a whole
   * mirrored prefix's answer is shared (frozen) until a record under it changes.
   */
  list<T>(prefix: string, schema: Schema<T>, opts?: { limit?: number }): Array<{ key: string; value: T }>;
  /**
   * Raw scan for operators and tools: no validation, nothing quarantined. `after`: only keys after this one (to
   * walk a long prefix in pieces). `reverse`: from the last key down (with `limit`: the last ones; not with `after`).
   */
  scan(prefix: string, opts?: { limit?: number; after?: string; reverse?: boolean }): ScanEntry[];
  count(prefix: string): number;
  /**
   * Calls `listener` after every committed transaction with the keys it wrote (their committed bytes; null when
   * deleted), before `transact` resolves. For views that follow records as they change (the operator's page);
   * a throwing listener is logged, never the writer's failure. Returns the unsubscribe.
   */
  onCommit(listener: (writes: ReadonlyMap<string, Buffer | null>) => void): () => void;
  /** Decoded values kept in memory (the mirror's and the whole-prefix list cache's): bounded, for tests and the soak. */
  cachedValues(): number;
  /** Resolves when all writes so far are flushed to disk. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  path: string;
  logger: Logger;
  readOnly?: boolean;
  /** Called when a record is quarantined (metrics). */
  onQuarantine?: (key: string, error: string) => void;
}

function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function prefixRange(prefix: string): { start: string; end: string } {
  return { start: prefix, end: `${prefix}\uffff` };
}

/** Prefixes kept in memory (see the invariants): the lifecycle lists and reads its held records several times per tick. */
const MIRRORED_PREFIXES: readonly string[] = [PREFIX.inflight];

/**
 * A whole-prefix list of more records than this is not kept decoded for the next list (the cache serves the lane's
 * history, listed several times per tick). Issue 24: the rare lists of `done:` (a reorg's re-check) and `tx:`
 * (a lane re-sync) kept every record listed decoded in the supervisor's heap until the next such list: a day of
 * done records at the default retention, and every activity ever claimed.
 */
export const LIST_CACHE_MAX_RECORDS = 4_096;

function damaged(path: string, damage: string): WcpError {
  return new WcpError(
    'STORE_CORRUPT',
    `the store is damaged: move it aside, wcp rebuilds from the chain (${path}: ${damage})`,
    {
      details: [
        `move the file aside (e.g. \`mv ${path} ${path}.bad\`) and start again: held activities are found again by the startup scan and the nonce is read from the chain`,
      ],
    },
  );
}

/**
 * Refuses a store file LMDB must not map (see `lmdb-file.ts`) with `STORE_CORRUPT`: every open checks the meta
 * pages, the file size and the roots; with `walk` (the default) every page of both trees is checked too (about
 * 10 ms per MB of store). A missing or empty file passes: LMDB creates it.
 */
export function checkStoreFile(path: string, opts: { walk?: boolean } = {}): WalkResult | undefined {
  if (!existsSync(path) || statSync(path).size === 0) return undefined;
  let damage: string | undefined;
  try {
    damage = inspectHeader(path);
  } catch (e) {
    throw new WcpError('STORE_OPEN_FAILED', `cannot read the store file ${path}`, {
      details: [e instanceof Error ? e.message : String(e)],
      cause: e,
    });
  }
  if (damage?.includes('no LMDB magic')) damage = `the file is not an LMDB store (${damage})`;
  if (damage) throw damaged(path, damage);
  if (opts.walk === false) return undefined;
  const walked = walkStore(path);
  if (walked.ok === false) throw damaged(path, walked.damage);
  return walked;
}

/**
 * Creates the store's directory (and its parents, 0700) when it does not exist, as daemons do with their data
 * directory. `STORE_OPEN_FAILED` naming the directory when that is not allowed.
 */
export function ensureStoreDir(path: string): void {
  const dir = dirname(path);
  if (existsSync(dir)) return;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new WcpError('STORE_OPEN_FAILED', `cannot create the store directory ${dir}`, {
      details: [
        e instanceof Error ? e.message : String(e),
        'create it (owner: the user wcp runs as), or change store.path',
      ],
      cause: e,
    });
  }
}

export function openStore(opts: OpenStoreOptions): Store {
  let db: RootDatabase<Buffer, string>;
  if (!opts.readOnly) ensureStoreDir(opts.path);
  // A read-only open of a store a live wcp holds (db scan, status, doctor) skips the file checks: that daemon checked
  // the file when it opened it, and while it commits the file's size and metas move under a reader of raw pages
  // (a size check then reads a store being written as truncated). LMDB's own readers see only committed pages.
  if (!(opts.readOnly && storeHolder(opts.path) !== undefined)) checkStoreFile(opts.path);
  try {
    db = open<Buffer, string>({
      path: opts.path,
      encoding: 'binary',
      compression: false,
      readOnly: opts.readOnly ?? false,
      // One env, one file: `wcp.db` is a file, not a directory, as the design notes name it.
      noSubdir: true,
    });
  } catch (e) {
    throw new WcpError('STORE_OPEN_FAILED', `cannot open the store at ${opts.path}`, {
      details: [e instanceof Error ? e.message : String(e)],
      cause: e,
    });
  }
  const log = opts.logger;
  if (!opts.readOnly) {
    // The store and LMDB's lock file hold the operator's activity records: owner only, whatever the umask.
    for (const f of [opts.path, `${opts.path}-lock`]) {
      try {
        chmodSync(f, 0o600);
      } catch {
        // not there (yet) or not ours to change: the umask set by `wcp run` covers new files
      }
    }
  }

  /** Whole-prefix lists: prefix + schema → key → the bytes and the value decoded from them. */
  const listCache = new Map<string, Map<string, { raw: Buffer; value: unknown }>>();

  /** Decodes raw bytes; returns the value or an error string. */
  function decode<T>(raw: Buffer, schema: Schema<T>): { ok: true; value: T } | { ok: false; error: string } {
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      return { ok: false, error: `not JSON: ${e instanceof Error ? e.message : String(e)}` };
    }
    const res = v.safeParse(schema, json);
    if (res.success) return { ok: true, value: res.output };
    const issue = res.issues[0];
    const path = issue?.path?.map((p) => String(p.key)).join('.') ?? '';
    return { ok: false, error: `invalid record${path ? ` at ${path}` : ''}: ${issue?.message ?? 'unknown'}` };
  }

  function quarantineIn(
    put: (k: string, v: unknown) => void,
    del: (k: string) => void,
    key: string,
    raw: Buffer,
    error: string,
  ) {
    const q: Quarantine = { key, raw_base64: raw.toString('base64'), error, quarantined_at_ms: Date.now() };
    put(quarantineKey(key), q);
    del(key);
  }

  function reportQuarantine(key: string, error: string) {
    log.error('corrupt record quarantined', { key, quarantine_key: quarantineKey(key), error });
    opts.onQuarantine?.(key, error);
  }

  /** Outside a transaction: quarantine asynchronously (only if the bad bytes are still there). */
  function quarantineLater(key: string, raw: Buffer, error: string) {
    if (opts.readOnly) {
      log.warn('corrupt record found (read-only: not quarantined)', { key, error });
      return;
    }
    reportQuarantine(key, error);
    void db
      .transaction(() => {
        const now = db.getBinary(key);
        if (now && Buffer.compare(now, raw) === 0) {
          quarantineIn(
            (k, val) => db.put(k, encode(val)),
            (k) => db.remove(k),
            key,
            raw,
            error,
          );
        }
      })
      .finally(() => mirrorRefresh([key]));
  }

  function readTyped<T>(key: string, schema: Schema<T>, inTx: StoreTx | null): T | undefined {
    const raw = db.getBinary(key);
    if (raw === undefined || raw === null) return undefined;
    // Bytes still as committed (the usual case inside a transaction): the mirror's decoded value serves.
    const known = mirror.raw(key);
    if (known?.equals(raw)) {
      const res = mirror.decode(key, known, schema, decode);
      if (res.ok) return res.value;
    }
    const copy = Buffer.from(raw);
    const res = decode(copy, schema);
    if (res.ok) return res.value;
    if (inTx) {
      reportQuarantine(key, res.error);
      quarantineIn(inTx.put, inTx.del, key, copy, res.error);
    } else {
      quarantineLater(key, copy, res.error);
    }
    return undefined;
  }

  /**
   * A transaction view whose writes are buffered and applied only when the callback returns: a callback that
   * throws writes nothing (lmdb-js keeps the writes of a throwing async-transaction callback otherwise).
   */
  function bufferedTx(writes: Map<string, Buffer | null>): StoreTx {
    const tx: StoreTx = {
      get: (key, schema) => {
        if (writes.has(key)) {
          const w = writes.get(key);
          if (w === null || w === undefined) return undefined;
          const res = decode(w, schema);
          if (!res.ok)
            throw new WcpError(
              'INTERNAL',
              `record written to ${key} in this transaction does not validate: ${res.error}`,
            );
          return res.value;
        }
        return readTyped(key, schema, tx);
      },
      has: (key) => (writes.has(key) ? writes.get(key) !== null : db.doesExist(key)),
      put: (key, value) => {
        writes.set(key, encode(value));
      },
      del: (key) => {
        writes.set(key, null);
      },
    };
    return tx;
  }

  function applyWrites(writes: Map<string, Buffer | null>) {
    for (const [key, val] of writes) {
      if (val === null) db.removeSync(key);
      else db.putSync(key, val);
    }
  }

  /** Whole-prefix lists of mirrored prefixes, by prefix and schema, with the mirror version they were made at. */
  const mirroredLists = new Map<
    string,
    {
      version: number;
      out: ReadonlyArray<{ key: string; value: unknown }>;
      /** Each record's bytes and its frozen entry, to reuse for the records unchanged at the next version. */
      entries: ReadonlyMap<string, { raw: Buffer; entry: { key: string; value: unknown } }>;
    }
  >();
  const mirror = createMirror(opts.readOnly ? [] : MIRRORED_PREFIXES, (p) => db.getRange(prefixRange(p)));

  /** Who `onCommit` tells of each commit; a listener that throws is logged, the commit stands. */
  const commitListeners = new Set<(writes: ReadonlyMap<string, Buffer | null>) => void>();
  function tellListeners(writes: ReadonlyMap<string, Buffer | null>): void {
    for (const l of commitListeners) {
      try {
        l(writes);
      } catch (e) {
        log.error('a store commit listener failed', { error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** Re-reads mirrored keys from LMDB (after a write whose outcome is not known, or one made outside `transact`). */
  function mirrorRefresh(keys: Iterable<string>): void {
    for (const key of keys) {
      if (!mirror.covers(key)) continue;
      const raw = db.getBinary(key);
      mirror.set(key, raw ? Buffer.from(raw) : null);
    }
  }

  /** A mirrored key read outside a transaction. */
  function getMirrored<T>(key: string, schema: Schema<T>): T | undefined {
    const raw = mirror.raw(key);
    if (!raw) return undefined;
    const res = mirror.decode(key, raw, schema, decode);
    if (res.ok) return res.value;
    quarantineLater(key, raw, res.error);
    return undefined;
  }

  return {
    path: opts.path,
    get: (key, schema) => (mirror.covers(key) ? getMirrored(key, schema) : readTyped(key, schema, null)),
    has: (key) => (mirror.covers(key) ? mirror.raw(key) !== undefined : db.doesExist(key)),
    transact: async (fn, o) => {
      if (opts.readOnly) throw new WcpError('STORE_OPEN_FAILED', 'the store is open read-only');
      const writes = new Map<string, Buffer | null>();
      let result: Awaited<ReturnType<typeof fn>>;
      try {
        result = await db.transaction(() => {
          writes.clear();
          const r = fn(bufferedTx(writes));
          applyWrites(writes);
          return r;
        });
      } catch (e) {
        // Whatever part of it LMDB kept is what the mirror must show.
        mirrorRefresh(writes.keys());
        throw e;
      }
      for (const [key, raw] of writes) mirror.set(key, raw);
      if (commitListeners.size > 0 && writes.size > 0) tellListeners(writes);
      if (o?.durable) await db.flushed;
      return result;
    },
    list: (prefix, schema, o) => {
      const out: Array<{ key: string; value: never }> = [];
      const keys = mirror.keys(prefix, o?.limit);
      if (keys) {
        // A whole mirrored prefix unchanged since the last list under this schema: the same (frozen) answer. The
        // lifecycle's loops list what they hold every tick; most ticks nothing under it changed.
        const version = mirror.version(prefix);
        const cacheKey = o?.limit ? undefined : `${prefix}\u0000${schemaId(schema)}`;
        const cached = cacheKey !== undefined ? mirroredLists.get(cacheKey) : undefined;
        if (cached && cached.version === version) return cached.out as typeof out;
        // A record whose bytes are the same (the same Buffer) as at the last list keeps its frozen entry: a list
        // after one record changed costs a lookup per record, not a decode lookup and a freeze.
        const before = cached?.entries;
        const entries = new Map<string, { raw: Buffer; entry: { key: string; value: unknown } }>();
        for (const key of keys) {
          const raw = mirror.raw(key);
          const hit = before?.get(key);
          if (raw && hit?.raw === raw) {
            out.push(hit.entry as (typeof out)[number]);
            entries.set(key, hit);
            continue;
          }
          const v = getMirrored(key, schema);
          if (v === undefined) continue;
          const entry = { key, value: v as never };
          out.push(entry);
          if (raw) entries.set(key, { raw, entry });
        }
        // Not cached when a record failed to decode (it is quarantined after this list; the next one differs).
        if (cacheKey !== undefined && version !== undefined && out.length === keys.length) {
          for (const e of out) Object.freeze(e);
          mirroredLists.set(cacheKey, { version, out: Object.freeze(out), entries });
        }
        return out;
      }
      // A whole-prefix list reuses the values decoded last time for records whose bytes did not change (the
      // lifecycle lists what it holds several times per tick); the cache is rebuilt from what was seen, so deleted
      // records leave it. Cached values are frozen: a caller changing one would throw, not corrupt the cache.
      const cacheKey = o?.limit ? undefined : `${prefix}\u0000${schemaId(schema)}`;
      const before = cacheKey !== undefined ? listCache.get(cacheKey) : undefined;
      const seen = new Map<string, { raw: Buffer; value: unknown }>();
      for (const { key, value } of db.getRange({ ...prefixRange(prefix), ...(o?.limit ? { limit: o.limit } : {}) })) {
        const raw = Buffer.from(value);
        const hit = before?.get(key);
        if (hit?.raw.equals(raw)) {
          seen.set(key, hit);
          out.push({ key, value: hit.value as never });
          continue;
        }
        const res = decode(raw, schema);
        if (res.ok) {
          out.push({ key, value: res.value as never });
          if (cacheKey !== undefined) seen.set(key, { raw, value: deepFreeze(res.value) });
        } else quarantineLater(key, raw, res.error);
      }
      if (cacheKey !== undefined) {
        if (seen.size <= LIST_CACHE_MAX_RECORDS) listCache.set(cacheKey, seen);
        else listCache.delete(cacheKey);
      }
      return out;
    },
    scan: (prefix, o) => {
      const out: ScanEntry[] = [];
      const range = prefixRange(prefix);
      const after = o?.after !== undefined && o.after >= range.start ? o.after : undefined;
      const reverse = o?.reverse === true && after === undefined;
      for (const { key, value } of db.getRange({
        ...(reverse ? { start: range.end, end: range.start, reverse } : range),
        ...(after !== undefined ? { start: after } : {}),
        // One more than asked when starting at `after` itself, which is skipped.
        ...(o?.limit ? { limit: o.limit + (after !== undefined ? 1 : 0) } : {}),
      })) {
        if (key === after) continue;
        if (o?.limit && out.length >= o.limit) break;
        const text = Buffer.from(value).toString('utf8');
        try {
          out.push({ key, value: JSON.parse(text) });
        } catch (e) {
          out.push({ key, value: undefined, error: `not JSON: ${e instanceof Error ? e.message : String(e)}` });
        }
      }
      return out;
    },
    count: (prefix) => db.getKeysCount(prefixRange(prefix)),
    onCommit: (listener) => {
      commitListeners.add(listener);
      return () => commitListeners.delete(listener);
    },
    cachedValues: () => {
      let n = mirror.decodedCount();
      for (const c of listCache.values()) n += c.size;
      for (const l of mirroredLists.values()) n += l.out.length;
      return n;
    },
    flushed: async () => {
      await db.flushed;
    },
    close: async () => {
      await db.close();
    },
  };
}

export { PREFIX };
