/**
 * An exclusive, non-blocking kernel lock (`flock(2)`) on a file, held by an open file description: the kernel
 * drops it when the process ends however it ends (kill -9, a crash, a container stopped), and it is seen across
 * PID namespaces and containers sharing the volume. The runtime-specific part of the store lock.
 *
 * - Bun (and the compiled binary): libc's `flock` through `bun:ffi`.
 * - Deno: `Deno.FsFile.tryLockSync(true)` (an `flock` too, so a Deno wcp and a Bun wcp see each other's lock).
 * - Node: no `flock` in `node:fs` and no FFI without an addon: `tryLockFile` answers `unsupported` and the caller
 *   falls back to the pid the file records (which a process in another PID namespace cannot check).
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { runtimeName } from './env.ts';

/** A lock held on an open file; the file's text can be rewritten while it is held. */
export interface HeldFileLock {
  /** Replaces the file's contents. */
  write(text: string): void;
  /** Empties the file (when `clear`), drops the lock and closes the file. Idempotent. */
  release(opts?: { clear?: boolean }): void;
}

export type TryLockResult =
  | { kind: 'held'; lock: HeldFileLock }
  /** Another open file description holds it (another process, in any PID namespace). */
  | { kind: 'busy' }
  /** This runtime cannot take kernel locks. */
  | { kind: 'unsupported' }
  | { kind: 'failed'; error: Error };

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

interface Libc {
  flock(fd: number, op: number): number;
  errno(): number;
  wouldBlock: number;
}

let libc: Libc | null | undefined;

/** libc's `flock` and `errno` through `bun:ffi`, loaded once; null where that is not possible. */
function bunLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  const names =
    process.platform === 'linux'
      ? { lib: 'libc.so.6', errno: '__errno_location', wouldBlock: 11 }
      : process.platform === 'darwin'
        ? { lib: 'libSystem.B.dylib', errno: '__error', wouldBlock: 35 }
        : undefined;
  if (!names) return libc;
  try {
    const ffi = createRequire(import.meta.url)('bun:ffi') as {
      dlopen(
        lib: string,
        defs: Record<string, { args: string[]; returns: string }>,
      ): { symbols: Record<string, (...a: number[]) => number> };
      read: { i32(ptr: number, offset: number): number };
    };
    const { symbols } = ffi.dlopen(names.lib, {
      flock: { args: ['i32', 'i32'], returns: 'i32' },
      [names.errno]: { args: [], returns: 'ptr' },
    });
    const errnoAt = symbols[names.errno] as () => number;
    libc = {
      flock: (fd, op) => (symbols.flock as (a: number, b: number) => number)(fd, op),
      errno: () => ffi.read.i32(errnoAt(), 0),
      wouldBlock: names.wouldBlock,
    };
  } catch {
    libc = null;
  }
  return libc;
}

function bunTryLock(path: string): TryLockResult {
  const c = bunLibc();
  if (!c) return { kind: 'unsupported' };
  const fd = openSync(path, 'a+', 0o600);
  if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = c.errno();
    closeSync(fd);
    if (errno === c.wouldBlock) return { kind: 'busy' };
    return { kind: 'failed', error: new Error(`flock(${path}) failed: errno ${errno}`) };
  }
  let released = false;
  return {
    kind: 'held',
    lock: {
      write(text) {
        ftruncateSync(fd, 0);
        writeSync(fd, text, 0);
      },
      release(opts) {
        if (released) return;
        released = true;
        try {
          if (opts?.clear) ftruncateSync(fd, 0);
        } finally {
          c.flock(fd, LOCK_UN);
          closeSync(fd);
        }
      },
    },
  };
}

interface DenoFile {
  tryLockSync(exclusive: boolean): boolean;
  unlockSync(): void;
  truncateSync(len?: number): void;
  writeSync(p: Uint8Array): number;
  seekSync(offset: number, whence: number): number;
  close(): void;
}
type DenoFs = { openSync(path: string, o: Record<string, unknown>): DenoFile };

function denoTryLock(path: string): TryLockResult {
  const deno = (globalThis as { Deno?: DenoFs }).Deno;
  if (!deno) return { kind: 'unsupported' };
  const file = deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  if (!file.tryLockSync(true)) {
    file.close();
    return { kind: 'busy' };
  }
  let released = false;
  return {
    kind: 'held',
    lock: {
      write(text) {
        file.truncateSync(0);
        file.seekSync(0, 0);
        const bytes = new TextEncoder().encode(text);
        for (let off = 0; off < bytes.length; ) off += file.writeSync(bytes.subarray(off));
      },
      release(opts) {
        if (released) return;
        released = true;
        try {
          if (opts?.clear) file.truncateSync(0);
        } finally {
          file.unlockSync();
          file.close();
        }
      },
    },
  };
}

/** Tries to take an exclusive kernel lock on `path` (created 0600 if missing) without waiting. */
export function tryLockFile(path: string): TryLockResult {
  try {
    switch (runtimeName()) {
      case 'bun':
        return bunTryLock(path);
      case 'deno':
        return denoTryLock(path);
      default:
        return { kind: 'unsupported' };
    }
  } catch (e) {
    return { kind: 'failed', error: e instanceof Error ? e : new Error(String(e)) };
  }
}
