/**
 * One daemon per store: `wcp run` holds an exclusive kernel lock (`flock`, see `src/runtime/flock.ts`) on
 * `<store>.pid` for its whole life. A second wcp on the same store, in any PID namespace or container sharing the
 * volume, is refused with `STORE_LOCKED`; the kernel drops the lock when the holder ends however it ends, so a dead
 * holder (kill -9, power loss, a reboot that reuses its pid) never blocks a start. Two daemons on one store would
 * each think they own the nonce lane.
 *
 * The file's text (`{"pid","host","started_at"}`) is information for the refusal message only, never what decides;
 * a clean release empties it, so text found when taking the lock means the last holder did not stop cleanly.
 * Under Node (no kernel lock there) the recorded pid decides, as a documented fallback that cannot see a holder in
 * another PID namespace.
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { WcpError } from '../internal/errors.ts';
import { tryLockFile } from '../runtime/flock.ts';

export interface StoreLock {
  readonly path: string;
  /** `kernel`: an flock held until release or exit; `pid`: the Node fallback (the recorded pid decides). */
  readonly kind: 'kernel' | 'pid';
  /** The last holder left its record behind: it did not stop cleanly (killed, crashed, power lost). */
  readonly uncleanStop: boolean;
  release(): void;
}

interface Holder {
  pid: number;
  host?: string;
  started_at?: string;
}

/** The holder record in the lock file, if it holds one. */
export function readHolder(lockPath: string): Holder | undefined {
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock file beside a store. */
export function lockPathOf(storePath: string): string {
  return `${storePath}.pid`;
}

function lockedError(storePath: string, holder: Holder | undefined): WcpError {
  const who = holder ? `pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''}` : 'pid unknown';
  return new WcpError('STORE_LOCKED', `the store ${storePath} is in use by another wcp (${who})`, {
    details: [
      'only one wcp may run on a store: stop the other one first, or give this one its own store.path',
      'the lock is held by the kernel for the running process (also across containers sharing the volume); it goes away when that process ends',
    ],
  });
}

function openFailed(lockPath: string, e: unknown): WcpError {
  return new WcpError('STORE_OPEN_FAILED', `cannot take the store lock ${lockPath}`, {
    details: [e instanceof Error ? e.message : String(e)],
    cause: e,
  });
}

function record(): string {
  return `${JSON.stringify({ pid: process.pid, host: hostname(), started_at: new Date().toISOString() })}\n`;
}

/** Takes the store's lock or throws `STORE_LOCKED` (a live holder) / `STORE_OPEN_FAILED` (cannot write it). */
export function acquireStoreLock(storePath: string): StoreLock {
  const lockPath = lockPathOf(storePath);
  const got = tryLockFile(lockPath);
  switch (got.kind) {
    case 'busy':
      throw lockedError(storePath, readHolder(lockPath));
    case 'failed':
      throw openFailed(lockPath, got.error);
    case 'held': {
      const uncleanStop = readHolder(lockPath) !== undefined;
      try {
        got.lock.write(record());
      } catch (e) {
        got.lock.release();
        throw openFailed(lockPath, e);
      }
      return { path: lockPath, kind: 'kernel', uncleanStop, release: () => got.lock.release({ clear: true }) };
    }
    case 'unsupported':
      return acquirePidLock(storePath, lockPath);
  }
}

/** The Node fallback: the recorded pid, when alive, holds the store. */
function acquirePidLock(storePath: string, lockPath: string): StoreLock {
  const holder = readHolder(lockPath);
  if (holder && holder.pid !== process.pid && alive(holder.pid)) throw lockedError(storePath, holder);
  try {
    closeSync(openSync(lockPath, 'a', 0o600));
    writeFileSync(lockPath, record(), { mode: 0o600 });
  } catch (e) {
    throw openFailed(lockPath, e);
  }
  let released = false;
  return {
    path: lockPath,
    kind: 'pid',
    uncleanStop: holder !== undefined,
    release() {
      if (released) return;
      released = true;
      if (readHolder(lockPath)?.pid === process.pid) {
        try {
          writeFileSync(lockPath, '');
        } catch {
          // gone or read-only now: the next start reads a dead pid
        }
      }
    },
  };
}

/**
 * Who holds the store now, without keeping anything: the holder's record when a live wcp holds the lock, else
 * undefined. Takes and drops the lock at once when it is free (a `wcp run` starting in that instant is refused).
 */
export function storeHolder(storePath: string): Holder | { pid?: undefined } | undefined {
  const lockPath = lockPathOf(storePath);
  if (!existsSync(lockPath)) return undefined;
  const got = tryLockFile(lockPath);
  switch (got.kind) {
    case 'busy':
      return readHolder(lockPath) ?? {};
    case 'held':
      got.lock.release();
      return undefined;
    case 'failed':
      return undefined;
    case 'unsupported': {
      const h = readHolder(lockPath);
      return h && h.pid !== process.pid && alive(h.pid) ? h : undefined;
    }
  }
}
