/**
 * The store and the process under a hostile environment, through the compiled binary from an empty sandbox: one
 * daemon per store across PID namespaces, a missing store directory, damaged store files, a signal while wcp is
 * still starting, and the systemd unit's limits. No chain: `wcp run` on the embedded config takes its lock, opens
 * its store and then waits for the chain, which is all these need.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../scripts/lib/anvil.ts';
import type { WcpConfig } from '../src/config/load.ts';
import { storeCheck } from '../src/doctor/link-checks.ts';
import { createLogger } from '../src/internal/logger.ts';
import { openStore } from '../src/store/store.ts';
import {
  captureOutput,
  finishSandbox,
  ROOT,
  runWcp,
  type Sandbox,
  sandbox,
  startWcp,
  type WcpProcess,
} from './support/wcp.ts';

let sb: Sandbox;
const procs: WcpProcess[] = [];
beforeAll(() => {
  sb = sandbox();
});
afterAll(() => finishSandbox('e2e-store-guard', sb, procs));

/** `wcp run` on the embedded config, no metrics endpoint, store at `store` (relative to the sandbox). */
function startRun(store: string): WcpProcess {
  const w = startWcp(sb, ['run'], { WCP__STORE__PATH: store, WCP__METRICS__ENABLED: 'false' });
  procs.push(w);
  return w;
}

const hasUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;

describe('one daemon per store', () => {
  test.skipIf(!hasUnshare)(
    'a second wcp in another PID namespace exits 11 naming the holder; the holder keeps its lock; once the holder is killed -9 the store is free',
    async () => {
      const first = startRun('ns.db');
      await first.waitFor(/chain not reachable yet/);
      const inNamespace = (): ReturnType<typeof captureOutput> & { kill(): void } => {
        const p = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', sb.bin, 'run'], {
          cwd: sb.dir,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: sb.dir,
            TMPDIR: '/tmp',
            WCP_LOG_FORMAT: 'json',
            WCP__STORE__PATH: 'ns.db',
            WCP__METRICS__ENABLED: 'false',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        return { ...captureOutput(p), kill: () => p.kill('SIGKILL') };
      };
      const second = inNamespace();
      expect(await second.exited).toBe(11);
      expect(second.output()).toContain(`in use by another wcp (pid ${first.proc.pid}`);
      expect(JSON.parse(readFileSync(join(sb.dir, 'ns.db.pid'), 'utf8')).pid).toBe(first.proc.pid);

      first.proc.kill('SIGKILL');
      await first.exited;
      const third = inNamespace();
      try {
        const deadline = Date.now() + 30_000;
        while (!/chain not reachable yet/.test(third.output()) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(third.output()).toContain('did not stop cleanly');
        expect(third.output()).toContain('chain not reachable yet');
      } finally {
        third.kill();
        await third.exited;
      }
    },
    60_000,
  );
});

describe('the store directory', () => {
  test('wcp run creates a missing store directory (0700); doctor says it will be created', async () => {
    const config = { store: { path: join(sb.dir, 'data', 'sub', 'wcp.db') } } as WcpConfig;
    const check = await storeCheck(config);
    expect(check.status).toBe('pass');
    expect(check.detail).toContain('missing, will be created');
    const w = startRun('data/sub/wcp.db');
    await w.waitFor(/chain not reachable yet/);
    expect(statSync(join(sb.dir, 'data')).mode & 0o777).toBe(0o700);
    expect(statSync(join(sb.dir, 'data', 'sub')).mode & 0o777).toBe(0o700);
    expect(existsSync(join(sb.dir, 'data', 'sub', 'wcp.db'))).toBe(true);
    w.proc.kill('SIGTERM');
    expect(await w.exited).toBe(5);
  }, 60_000);
});

describe('a damaged store', () => {
  const PAGE = 4096;
  let good = '';
  beforeAll(async () => {
    good = join(sb.dir, 'good.db');
    const store = openStore({ path: good, logger: createLogger('test', { write: () => {} }) });
    for (let round = 0; round < 4; round++) {
      await store.transact((tx) => {
        for (let i = 0; i < 400; i++)
          tx.put(`done:${String(round * 400 + i).padStart(8, '0')}`, { pad: 'x'.repeat(200) });
      });
    }
    await store.close();
  });

  function damaged(name: string, damage: (path: string, pages: number) => void): string {
    const p = join(sb.dir, `${name}.db`);
    copyFileSync(good, p);
    damage(p, statSync(p).size / PAGE);
    return name;
  }
  function overwrite(path: string, bytes: Buffer, page: number): void {
    const fd = openSync(path, 'r+');
    writeSync(fd, bytes, 0, bytes.length, page * PAGE);
    closeSync(fd);
  }

  test('run, status and db scan exit 4 with the fix, never a crash, for truncated, zeroed and random pages; doctor fails', async () => {
    const port = await freePort(); // nothing listens: status reads the store
    const stores = [
      damaged('truncated', (p, pages) => truncateSync(p, Math.floor(pages / 2) * PAGE)),
      damaged('zeroed', (p, pages) => overwrite(p, Buffer.alloc(PAGE * 4), Math.floor(pages / 2))),
      damaged('random', (p, pages) => {
        for (let i = 3; i < pages; i += 11)
          overwrite(p, Buffer.from(Array.from({ length: PAGE }, (_, k) => (k * 7919 + i) & 0xff)), i);
      }),
    ];
    for (const name of stores) {
      const env = {
        WCP__STORE__PATH: `${name}.db`,
        WCP__METRICS__LISTEN: `127.0.0.1:${port}`,
        WCP__METRICS__ENABLED: 'false',
      };
      for (const args of [['run'], ['status'], ['db', 'scan', 'done:']]) {
        const r = runWcp(sb, args, args[0] === 'status' ? { ...env, WCP__METRICS__ENABLED: 'true' } : env);
        expect([name, args.join(' '), r.code]).toEqual([name, args.join(' '), 4]);
        expect(r.stderr).toContain('the store is damaged: move it aside, wcp rebuilds from the chain');
        expect(r.stderr).not.toContain('bun.report');
      }
      const check = await storeCheck({ store: { path: join(sb.dir, `${name}.db`) } } as WcpConfig);
      expect([name, check.status]).toEqual([name, 'fail']);
      expect(check.detail).toContain('the store is damaged');
    }
  }, 120_000);
});

describe('signals while starting', () => {
  /** Whether `pid` catches SIGTERM now (bit 15 of SigCgt in /proc/<pid>/status). */
  function catchesTerm(pid: number): boolean {
    try {
      const m = /SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? (BigInt(`0x${m[1]}`) & (1n << 14n)) !== 0n : false;
    } catch {
      return false;
    }
  }

  test('SIGTERM as soon as wcp can see it ends wcp run with exit 0 before anything started; at any later delay an exit code, never the signal', async () => {
    for (const after of [0, 0, 0, 10, 40, 150]) {
      const w = startRun(`sig-${after}.db`);
      const pid = w.proc.pid as number;
      while (!catchesTerm(pid) && w.proc.exitCode === null) await new Promise((r) => setTimeout(r, 1));
      if (after) await new Promise((r) => setTimeout(r, after));
      w.proc.kill('SIGTERM');
      const code = await w.exited;
      if (after === 0) {
        expect([after, code]).toEqual([after, 0]);
        expect(w.output()).toContain('stopping before anything started');
      } else expect([after, [0, 5].includes(code as number)]).toEqual([after, true]);
    }
    // Sent blind at a few delays after spawn: whenever the process was already catching it, an exit code.
    for (const delay of [2, 20, 60]) {
      const w = startRun(`sig-blind-${delay}.db`);
      await new Promise((r) => setTimeout(r, delay));
      const caught = catchesTerm(w.proc.pid as number);
      w.proc.kill('SIGTERM');
      const code = await w.exited;
      if (caught) expect([delay, typeof code]).toEqual([delay, 'number']);
    }
  }, 90_000);
});

describe('deploy/wcp.service', () => {
  test('no core dumps (LimitCORE=0) and no restart loop on a damaged store (4 in RestartPreventExitStatus)', () => {
    const unit = readFileSync(join(ROOT, 'deploy', 'wcp.service'), 'utf8');
    expect(unit).toMatch(/^LimitCORE=0$/m);
    const prevent = /^RestartPreventExitStatus=(.*)$/m.exec(unit)?.[1]?.split(/\s+/) ?? [];
    expect(prevent).toEqual(expect.arrayContaining(['3', '4', '6', '10', '11']));
  });
});
