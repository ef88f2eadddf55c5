import { describe, expect, test } from 'bun:test';
import {
  buildVersion,
  checkTmpdir,
  embeddedWorkerEntry,
  ensureWritableTmpdir,
  isCompiledBinary,
  runtimeName,
} from './env.ts';
import { DEFAULT_WORKER_URL, createWorkerPool, workerFilename } from './workers.ts';

describe('src/runtime from source', () => {
  test('reports bun, not compiled, dev build', () => {
    expect(runtimeName()).toBe('bun');
    expect(isCompiledBinary()).toBe(false);
    expect(buildVersion()).toBe('dev');
    expect(embeddedWorkerEntry()).toBeUndefined();
  });

  test('the temp directory check passes here and ensureWritableTmpdir is a no-op from source', () => {
    expect(checkTmpdir().ok).toBe(true);
    expect(() => ensureWritableTmpdir()).not.toThrow();
  });

  test('workerFilename is the source file URL', () => {
    expect(workerFilename()).toBe(DEFAULT_WORKER_URL.href);
    expect(DEFAULT_WORKER_URL.pathname.endsWith('/src/supervisor/worker-entry.ts')).toBe(true);
    const other = new URL('../../test/fixtures/probe/worker.ts', import.meta.url);
    expect(workerFilename(other)).toBe(other.href);
    expect(() => workerFilename('https://example.com/w.ts')).toThrow(/file: URL/);
  });

  test('createWorkerPool keeps exactly `threads` workers', async () => {
    expect(() => createWorkerPool({ threads: 0 })).toThrow(RangeError);
    const pool = createWorkerPool({
      threads: 2,
      source: new URL('../../test/fixtures/probe/worker.ts', import.meta.url),
    });
    try {
      expect(pool.options.minThreads).toBe(2);
      expect(pool.options.maxThreads).toBe(2);
      expect(pool.options.atomics).toBe('disabled');
      const r = await pool.run({ kind: 'grpcEcho', messages: 2 });
      expect(r).toEqual({ kind: 'grpcEcho', sent: 2, echoed: 2, allMatch: true });
    } finally {
      await pool.close();
    }
  });

  test('createWorkerPool runs `tasksPerThread` long-lived tasks side by side in each thread', async () => {
    expect(() => createWorkerPool({ threads: 1, tasksPerThread: 0 })).toThrow(RangeError);
    const pool = createWorkerPool({
      threads: 1,
      tasksPerThread: 2,
      source: new URL('../../test/fixtures/probe/worker.ts', import.meta.url),
    });
    try {
      expect(pool.options.concurrentTasksPerWorker).toBe(2);
      expect(pool.options.maxQueue).toBe(2);
      const both = await Promise.all([
        pool.run({ kind: 'grpcEcho', messages: 1 }),
        pool.run({ kind: 'grpcEcho', messages: 1 }),
      ]);
      expect(both).toEqual([
        { kind: 'grpcEcho', sent: 1, echoed: 1, allMatch: true },
        { kind: 'grpcEcho', sent: 1, echoed: 1, allMatch: true },
      ]);
      expect(pool.threads.length).toBe(1);
    } finally {
      await pool.close();
    }
  });
});
