/**
 * Reads an LMDB data file with plain file reads, never through LMDB, to tell whether LMDB may safely map it.
 * LMDB trusts its file: a truncated file faults (SIGBUS) when a page past its end is touched, a damaged meta page
 * or B-tree page can segfault or abort inside the native code, and none of that can be caught in-process. A
 * damaged file found here becomes `STORE_CORRUPT` (exit 4) before LMDB opens it.
 *
 * - `inspectHeader`: both meta pages (magic, version, page size), the newest one's last page against the file size,
 *   and the roots' page headers. A few reads: run on every open.
 * - `walkStore`: every page of both trees (free list and records) from the newest meta: page numbers, flags,
 *   node offsets, overflow runs, key order, and the entry and page counts the meta records. Reads the whole
 *   tree: run where its cost is affordable (see callers). A walk that a commit overlapped (the newest txn id
 *   changed under it) is repeated, so a running daemon's store is not reported damaged for being written.
 *
 * Layout (lmdb-js's LMDB; header size 16 for the 0.9 format, 24 for 1.0's, found from the magic's offset):
 * page header `pgno u64 [txnid u64] pad u16 flags u16 lower u16 upper u16`; meta after it:
 * `magic u32 version u32 address u64 mapsize u64 dbs[2]×48 last_pg u64 txnid u64`; each db:
 * `pad(u32, the page size in dbs[0]) flags u16 depth u16 branch leaf overflow entries root (u64 each)`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAGIC = 0xbeefc0de;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_META = 0x08;
const P_LEAF2 = 0x20;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const F_DUPDATA = 0x04;
const MDB_DUPSORT = 0x04;
const P_INVALID = 0xffffffffffffffffn;
const NODESIZE = 8;

interface DbRecord {
  flags: number;
  depth: number;
  branch: number;
  leaf: number;
  overflow: number;
  entries: number;
  root: bigint;
}

export interface Meta {
  /** Page header size: 16 (LMDB 0.9) or 24 (LMDB 1.0). */
  header: number;
  pageSize: number;
  version: number;
  lastPage: number;
  txnid: bigint;
  free: DbRecord;
  main: DbRecord;
}

/** What is wrong with the file, in a phrase (`file ends at page 78, the store uses 156`), or undefined. */
export type Damage = string | undefined;

/** The meta record in `page` (a meta page's bytes), or why it is not one. */
function parseMeta(page: Buffer): Meta | string {
  for (const header of [24, 16]) {
    if (page.length < header + 136 || page.readUInt32LE(header) !== MAGIC) continue;
    const flags = page.readUInt16LE(header - 6);
    if ((flags & P_META) === 0) return 'a meta page without the meta flag';
    const db = (at: number): DbRecord => ({
      flags: page.readUInt16LE(at + 4),
      depth: page.readUInt16LE(at + 6),
      branch: Number(page.readBigUInt64LE(at + 8)),
      leaf: Number(page.readBigUInt64LE(at + 16)),
      overflow: Number(page.readBigUInt64LE(at + 24)),
      entries: Number(page.readBigUInt64LE(at + 32)),
      root: page.readBigUInt64LE(at + 40),
    });
    return {
      header,
      pageSize: page.readUInt32LE(header + 24),
      version: page.readUInt32LE(header + 4),
      free: db(header + 24),
      main: db(header + 72),
      lastPage: Number(page.readBigUInt64LE(header + 120)),
      txnid: page.readBigUInt64LE(header + 128),
    };
  }
  return 'no LMDB magic';
}

/** An open data file read page by page. */
interface PageFile {
  size: number;
  read(pgno: number, pageSize: number, into?: Buffer): Buffer;
  close(): void;
}

function openPageFile(path: string): PageFile {
  const fd = openSync(path, 'r');
  return {
    size: fstatSync(fd).size,
    read(pgno, pageSize, into) {
      const buf = into ?? Buffer.alloc(pageSize);
      const n = readSync(fd, buf, 0, pageSize, pgno * pageSize);
      if (n < pageSize) buf.fill(0, n);
      return buf;
    },
    close: () => closeSync(fd),
  };
}

/** Both metas checked, and the one LMDB would use (the higher txn id). */
function readMetas(f: PageFile): { meta: Meta } | { damage: string } {
  const first = Buffer.alloc(Math.min(4096, f.size));
  const m0 = parseMeta(f.read(0, first.length, first));
  if (typeof m0 === 'string') return { damage: `meta page 0: ${m0}` };
  const ps = m0.pageSize;
  if (ps < 512 || ps > 65536 || (ps & (ps - 1)) !== 0) return { damage: `meta page 0: page size ${ps}` };
  if (f.size < 2 * ps) return { damage: `the file is ${f.size} bytes, shorter than its two meta pages` };
  const m1 = parseMeta(f.read(1, ps));
  if (typeof m1 === 'string') return { damage: `meta page 1: ${m1}` };
  if (m1.pageSize !== ps || m1.header !== m0.header) return { damage: 'the two meta pages disagree on the layout' };
  if (m0.version !== m1.version) return { damage: 'the two meta pages disagree on the version' };
  return { meta: m0.txnid > m1.txnid ? m0 : m1 };
}

function checkSize(f: PageFile, meta: Meta): Damage {
  const needed = (meta.lastPage + 1) * meta.pageSize;
  if (f.size < needed) {
    return `the file is ${f.size} bytes but its newest meta uses pages up to ${meta.lastPage} (${needed} bytes): truncated`;
  }
  return undefined;
}

function pageHeader(buf: Buffer, h: number) {
  return {
    pgno: buf.readBigUInt64LE(0),
    flags: buf.readUInt16LE(h - 6),
    lower: buf.readUInt16LE(h - 4),
    upper: buf.readUInt16LE(h - 2),
    pages: buf.readUInt32LE(h - 4),
  };
}

/** The root of `db` is a page number in the file whose header names it as a branch or leaf page. */
function checkRoot(f: PageFile, meta: Meta, db: DbRecord, name: string): Damage {
  if (db.root === P_INVALID) return db.entries === 0 ? undefined : `${name} tree: no root but ${db.entries} entries`;
  const root = Number(db.root);
  if (root < 2 || root > meta.lastPage) return `${name} tree: root page ${root} outside 2..${meta.lastPage}`;
  const p = pageHeader(f.read(root, meta.pageSize), meta.header);
  if (p.pgno !== db.root) return `${name} tree: page ${root} holds page number ${p.pgno}`;
  if ((p.flags & (P_BRANCH | P_LEAF)) === 0)
    return `${name} tree: root page ${root} has flags 0x${p.flags.toString(16)}`;
  return undefined;
}

/**
 * The cheap check run on every open: undefined when the file is absent-or-empty-safe for LMDB to map as far as
 * its metas, size and roots show, else what is wrong. Throws only on I/O errors.
 */
export function inspectHeader(path: string): Damage {
  const f = openPageFile(path);
  try {
    if (f.size === 0) return undefined; // created, never written: LMDB initialises it
    const metas = readMetas(f);
    if ('damage' in metas) return metas.damage;
    const { meta } = metas;
    return checkSize(f, meta) ?? checkRoot(f, meta, meta.free, 'free-list') ?? checkRoot(f, meta, meta.main, 'records');
  } finally {
    f.close();
  }
}

interface Counts {
  branch: number;
  leaf: number;
  overflow: number;
  entries: number;
}

/** Walks one tree depth-first; returns what is wrong, or undefined with `counts` filled in. */
function walkTree(f: PageFile, meta: Meta, db: DbRecord, name: string, orderedKeys: boolean, counts: Counts): Damage {
  if (db.root === P_INVALID) return undefined;
  const { pageSize: ps, header: h, lastPage } = meta;
  const seen = new Set<number>();
  let prevKey: Buffer | undefined;
  const inRange = (pg: number) => pg >= 2 && pg <= lastPage;

  const visit = (pgno: number, depth: number): Damage => {
    if (!inRange(pgno)) return `${name} tree: page ${pgno} outside 2..${lastPage}`;
    if (seen.has(pgno)) return `${name} tree: page ${pgno} reached twice`;
    seen.add(pgno);
    const buf = f.read(pgno, ps);
    const p = pageHeader(buf, h);
    if (p.pgno !== BigInt(pgno)) return `${name} tree: page ${pgno} holds page number ${p.pgno}`;
    const leafLevel = depth === db.depth;
    const want = leafLevel ? P_LEAF : P_BRANCH;
    if ((p.flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META)) !== want || (p.flags & P_LEAF2) !== 0) {
      return `${name} tree: page ${pgno} (depth ${depth} of ${db.depth}) has flags 0x${p.flags.toString(16)}`;
    }
    // Node offsets, `lower` and `upper` count from `base` (LMDB's PAGEBASE: the header in the 1.0 format, so
    // that 64 KiB pages fit), and the pointer array starts after the header.
    const base = h === 24 ? h : 0;
    if (p.lower < h - base || p.upper > ps - base || p.lower > p.upper || (p.lower - (h - base)) % 2 !== 0) {
      return `${name} tree: page ${pgno} has bounds ${p.lower}..${p.upper}`;
    }
    const n = (p.lower - (h - base)) >> 1;
    if (n === 0) return `${name} tree: page ${pgno} is empty`;
    if (leafLevel) counts.leaf++;
    else counts.branch++;
    for (let i = 0; i < n; i++) {
      const ptr = buf.readUInt16LE(h + 2 * i);
      const off = base + ptr;
      if (ptr < p.upper || off + NODESIZE > ps) return `${name} tree: page ${pgno} node ${i} at offset ${ptr}`;
      const lo = buf.readUInt16LE(off);
      const hi = buf.readUInt16LE(off + 2);
      const nflags = buf.readUInt16LE(off + 4);
      const ksize = buf.readUInt16LE(off + 6);
      const keyEnd = off + NODESIZE + ksize;
      if (keyEnd > ps) return `${name} tree: page ${pgno} node ${i} key runs past the page`;
      if (!leafLevel) {
        const child = lo + hi * 0x10000 + nflags * 0x100000000;
        const bad = visit(child, depth + 1);
        if (bad) return bad;
        continue;
      }
      counts.entries++;
      const dsize = lo + hi * 0x10000;
      if (orderedKeys) {
        const key = buf.subarray(off + NODESIZE, keyEnd);
        if (prevKey && Buffer.compare(prevKey, key) >= 0) return `${name} tree: keys out of order on page ${pgno}`;
        prevKey = Buffer.from(key);
      }
      if (nflags & F_BIGDATA) {
        if (keyEnd + 8 > ps) return `${name} tree: page ${pgno} node ${i} overflow pointer runs past the page`;
        const ov = Number(buf.readBigUInt64LE(keyEnd));
        if (!inRange(ov) || seen.has(ov)) return `${name} tree: overflow page ${ov} out of range or reached twice`;
        const o = pageHeader(f.read(ov, ps), h);
        if (o.pgno !== BigInt(ov) || (o.flags & P_OVERFLOW) === 0) {
          return `${name} tree: page ${ov} is not the overflow page its record points to`;
        }
        if (o.pages < 1 || ov + o.pages - 1 > lastPage || o.pages * ps - h < dsize) {
          return `${name} tree: overflow run at page ${ov} (${o.pages} pages) does not fit its ${dsize} bytes`;
        }
        for (let k = 0; k < o.pages; k++) seen.add(ov + k);
        counts.overflow += o.pages;
      } else if ((nflags & (F_SUBDATA | F_DUPDATA)) === 0 && keyEnd + dsize > ps) {
        return `${name} tree: page ${pgno} node ${i} value runs past the page`;
      }
    }
    return undefined;
  };

  return visit(Number(db.root), 1);
}

function compareCounts(db: DbRecord, c: Counts, name: string, checkEntries: boolean): Damage {
  if (c.branch !== db.branch || c.leaf !== db.leaf || c.overflow !== db.overflow) {
    return `${name} tree: ${c.branch}/${c.leaf}/${c.overflow} branch/leaf/overflow pages reached, the meta records ${db.branch}/${db.leaf}/${db.overflow}`;
  }
  if (checkEntries && c.entries !== db.entries) {
    return `${name} tree: ${c.entries} records reached, the meta records ${db.entries}`;
  }
  return undefined;
}

/** Outcome of `walkStore`. */
export type WalkResult =
  | { ok: true; entries: number; pages: number }
  | { ok: false; damage: string }
  /** Commits kept overlapping the walk (a busy daemon): nothing could be concluded beyond the header check. */
  | { ok: 'unverified'; reason: string };

/** Walks both trees of the store file at `path` (see the module comment). An absent or empty file is fine. */
export function walkStore(path: string, attempts = 5): WalkResult {
  const f = openPageFile(path);
  try {
    if (f.size === 0) return { ok: true, entries: 0, pages: 0 };
    for (let attempt = 0; attempt < attempts; attempt++) {
      const metas = readMetas(f);
      if ('damage' in metas) return { ok: false, damage: metas.damage };
      const { meta } = metas;
      const damage =
        checkSize(f, meta) ??
        (() => {
          const free: Counts = { branch: 0, leaf: 0, overflow: 0, entries: 0 };
          const main: Counts = { branch: 0, leaf: 0, overflow: 0, entries: 0 };
          return (
            walkTree(f, meta, meta.free, 'free-list', false, free) ??
            compareCounts(meta.free, free, 'free-list', true) ??
            walkTree(f, meta, meta.main, 'records', true, main) ??
            compareCounts(meta.main, main, 'records', (meta.main.flags & MDB_DUPSORT) === 0)
          );
        })();
      const again = readMetas(f);
      if ('meta' in again && again.meta.txnid !== meta.txnid) continue; // a commit overlapped: walk again
      if (damage) return { ok: false, damage };
      return {
        ok: true,
        entries: meta.main.entries,
        pages: meta.lastPage + 1,
      };
    }
    return { ok: 'unverified', reason: `the store changed during each of ${attempts} walks` };
  } finally {
    f.close();
  }
}
