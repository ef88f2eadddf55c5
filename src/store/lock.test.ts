import { describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WcpError } from '../internal/errors.ts';
import { acquireStoreLock, storeHolder } from './lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'wcp-lock-'));

function lockedBy(db: string): WcpError {
  try {
    acquireStoreLock(db).release();
  } catch (e) {
    if (e instanceof WcpError) return e;
    throw e;
  }
  throw new Error('the lock was taken');
}

/** Another process holding the store's lock until killed. */
async function holder(db: string) {
  const lockTs = new URL('./lock.ts', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    [
      '-e',
      `import { acquireStoreLock } from '${lockTs}'; acquireStoreLock('${db}'); console.log('held'); setInterval(() => {}, 1e6);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
  return child;
}

describe('store lock', () => {
  test('a kernel lock on <store>.pid (0600) records pid and host; release empties the file and keeps it', () => {
    const db = join(dir, 'a.db');
    const lock = acquireStoreLock(db);
    expect(lock.kind).toBe('kernel');
    expect(lock.uncleanStop).toBe(false);
    expect(statSync(lock.path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(readFileSync(lock.path, 'utf8')).toBe('');
    acquireStoreLock(db).release(); // free again
  });

  test('a live holder is refused with STORE_LOCKED naming its pid; killed -9, the store is free and the stop reads as unclean', async () => {
    const db = join(dir, 'b.db');
    const other = await holder(db);
    try {
      const err = lockedBy(db);
      expect(err.code).toBe('STORE_LOCKED');
      expect(err.message).toContain(`pid ${other.pid}`);
      expect(storeHolder(db)?.pid).toBe(other.pid);
    } finally {
      other.kill('SIGKILL');
      await new Promise((r) => other.once('exit', r));
    }
    expect(storeHolder(db)).toBeUndefined();
    const lock = acquireStoreLock(db);
    expect(lock.uncleanStop).toBe(true);
    lock.release();
  });

  test('a record naming a live pid that holds no lock (a reboot reused it, another PID namespace) does not block', async () => {
    const db = join(dir, 'c.db');
    const unrelated = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(`${db}.pid`, JSON.stringify({ pid: unrelated.pid, host: 'h' }));
      const lock = acquireStoreLock(db);
      expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
      lock.release();
    } finally {
      unrelated.kill('SIGKILL');
    }
  });
});
