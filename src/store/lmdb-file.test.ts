import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { inspectHeader, walkStore } from './lmdb-file.ts';
import { checkStoreFile, openStore } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'wcp-lmdbfile-'));
const quiet = createLogger('test', { write: () => {} });
const good = join(dir, 'good.db');
const PAGE = 4096;

/** A real store after churn: many commits, deletions (a free list), values spilling to overflow pages. */
beforeAll(async () => {
  const store = openStore({ path: good, logger: quiet });
  for (let round = 0; round < 12; round++) {
    await store.transact((tx) => {
      for (let i = 0; i < 200; i++) {
        const key = `done:${String((round * 131 + i * 7) % 1500).padStart(8, '0')}`;
        if (i % 4 === 0) tx.del(key);
        else tx.put(key, { round, pad: 'x'.repeat(i % 15 === 1 ? 9000 + i : 120 + i) });
      }
    });
  }
  await store.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function damaged(name: string, damage: (path: string) => void): string {
  const p = join(dir, `${name}.db`);
  copyFileSync(good, p);
  damage(p);
  return p;
}

function overwrite(path: string, bytes: Buffer, page: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, page * PAGE);
  closeSync(fd);
}

describe('LMDB file check', () => {
  test('a real store after churn (free list, overflow values, deletions) passes the header check and the walk', () => {
    expect(inspectHeader(good)).toBeUndefined();
    const walked = walkStore(good);
    expect(walked.ok).toBe(true);
    expect(checkStoreFile(good)).toMatchObject({ ok: true });
  });

  test('truncated, zeroed-page and random-page stores are refused as STORE_CORRUPT before LMDB maps them', () => {
    const pages = statSync(good).size / PAGE;
    let seed = 19;
    const byte = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed >>> 16;
    };
    const randomPage = () => Buffer.from(Array.from({ length: PAGE }, () => byte() & 0xff));
    const cases = {
      truncatedHalf: damaged('trunc-half', (p) => truncateSync(p, Math.floor(pages / 2) * PAGE)),
      truncatedByteShort: damaged('trunc-odd', (p) => truncateSync(p, pages * PAGE - 100)),
      zeroedMeta: damaged('zero-meta', (p) => overwrite(p, Buffer.alloc(PAGE), 0)),
      zeroedPages: damaged('zero-mid', (p) => overwrite(p, Buffer.alloc(PAGE * 8), Math.floor(pages / 3))),
      randomPages: damaged('rand-mid', (p) => {
        for (let i = 2; i < pages; i += 9) overwrite(p, randomPage(), i);
      }),
    };
    for (const [name, path] of Object.entries(cases)) {
      let err: unknown;
      try {
        checkStoreFile(path);
      } catch (e) {
        err = e;
      }
      expect([name, (err as { code?: string })?.code]).toEqual([name, 'STORE_CORRUPT']);
      expect((err as Error).message).toContain('the store is damaged: move it aside, wcp rebuilds from the chain');
    }
    // The cheap check (every open) alone already refuses the truncated and meta cases.
    expect(inspectHeader(cases.truncatedHalf)).toContain('truncated');
    expect(inspectHeader(cases.zeroedMeta)).toContain('no LMDB magic');
  });
});
