/**
 * One daemon per store: `wcp run` holds `<store>.pid` (created exclusively, mode 0600, holding the pid) for its
 * whole life. A second `wcp run` on the same store finds a live holder and stops at once with `STORE_LOCKED`
 * naming that pid; a file left by a process that no longer exists (kill -9, power loss) is taken over. Two
 * daemons on one store would each think they own the nonce lane.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { WcpError } from '../internal/errors.ts';

export interface StoreLock {
  readonly path: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderOf(lockPath: string): { pid: number; host?: string; started_at?: string } | undefined {
  try {
    const rec = JSON.parse(readFileSync(lockPath, 'utf8')) as { pid?: unknown; host?: unknown; started_at?: unknown };
    if (typeof rec.pid !== 'number') return undefined;
    return {
      pid: rec.pid,
      ...(typeof rec.host === 'string' ? { host: rec.host } : {}),
      ...(typeof rec.started_at === 'string' ? { started_at: rec.started_at } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Takes the store's lock or throws `STORE_LOCKED` (a live holder) / `STORE_OPEN_FAILED` (cannot write it). */
export function acquireStoreLock(storePath: string): StoreLock {
  const lockPath = `${storePath}.pid`;
  for (let round = 0; round < 2; round++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new WcpError('STORE_OPEN_FAILED', `cannot create the store lock ${lockPath}`, {
          details: [String((e as Error).message)],
          cause: e,
        });
      }
      const holder = holderOf(lockPath);
      if (holder && holder.pid !== process.pid && alive(holder.pid)) {
        throw new WcpError(
          'STORE_LOCKED',
          `the store ${storePath} is in use by another wcp (pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''})`,
          {
            details: [
              'only one wcp may run on a store: stop the other one first, or give this one its own store.path',
              `if no wcp is running, delete ${lockPath}`,
            ],
          },
        );
      }
      // Stale (the holder is gone) or unreadable: take it over.
      try {
        unlinkSync(lockPath);
      } catch {
        // a concurrent starter removed it first; the next round decides
      }
      continue;
    }
    writeSync(fd, `${JSON.stringify({ pid: process.pid, host: hostname(), started_at: new Date().toISOString() })}\n`);
    closeSync(fd);
    let released = false;
    return {
      path: lockPath,
      release() {
        if (released) return;
        released = true;
        if (holderOf(lockPath)?.pid === process.pid) {
          try {
            unlinkSync(lockPath);
          } catch {
            // already gone
          }
        }
      },
    };
  }
  throw new WcpError(
    'STORE_LOCKED',
    `could not take the store lock ${lockPath}: another wcp is starting on the same store`,
  );
}
