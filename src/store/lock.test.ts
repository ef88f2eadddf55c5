import { describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WcpError } from '../internal/errors.ts';
import { createLogger } from '../internal/logger.ts';
import { acquireStoreLock } from './lock.ts';
import { checkStoreFile, openStore } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'wcp-lock-'));
const quiet = createLogger('test', { write: () => {} });

describe('store lock', () => {
  test('taken with mode 0600, released on release()', () => {
    const db = join(dir, 'a.db');
    const lock = acquireStoreLock(db);
    expect(statSync(lock.path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  test('a live holder is refused with STORE_LOCKED naming its pid; a dead one is taken over', async () => {
    const db = join(dir, 'b.db');
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(`${db}.pid`, JSON.stringify({ pid: other.pid, host: 'h' }));
      let err: unknown;
      try {
        acquireStoreLock(db);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WcpError);
      expect((err as WcpError).code).toBe('STORE_LOCKED');
      expect((err as WcpError).message).toContain(`pid ${other.pid}`);
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
    const lock = acquireStoreLock(db); // the holder is gone now
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });
});

describe('store file check', () => {
  test('a garbage file is refused as STORE_CORRUPT before LMDB maps it; a real store passes', async () => {
    const bad = join(dir, 'bad.db');
    writeFileSync(bad, Buffer.alloc(12_288, 7));
    expect(() => checkStoreFile(bad)).toThrow(/not an LMDB store/);
    const good = join(dir, 'good.db');
    const store = openStore({ path: good, logger: quiet });
    await store.transact((tx) => tx.put('k', { a: 1 }));
    await store.close();
    expect(() => checkStoreFile(good)).not.toThrow();
    expect(statSync(good).mode & 0o777).toBe(0o600);
  });
});
