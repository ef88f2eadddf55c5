import { afterAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../internal/logger.ts';
import { laneKey } from '../store/keys.ts';
import { openStore } from '../store/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'wcp-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI from source behind a pipe whose reader starts late (`| (sleep 0.3; cat)`), as a slow consumer would. */
function runSlowReader(args: string[]): Promise<{ code: number | null; stdout: string }> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = `${[process.execPath, resolve(import.meta.dir, '..', 'main.ts'), ...args].map(q).join(' ')} | (sleep 0.3; cat)`;
  const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((res) =>
    child.on('close', (code) => res({ code, stdout: Buffer.concat(chunks).toString('utf8') })),
  );
}

describe('wcp db scan', () => {
  test('prints every record to a pipe, however large the output (nothing is cut at exit)', async () => {
    const path = join(dir, 'wcp.db');
    const store = openStore({ path, logger: createLogger('test', { write: () => {} }) });
    const N = 600; // ~0.5 MB of JSON lines: far more than a pipe buffer
    await store.transact((tx) => {
      for (let n = 0; n < N; n++) tx.put(laneKey(n), { nonce: n, data: `0x${'ab'.repeat(400)}` });
    });
    await store.close();
    const r = await runSlowReader(['db', 'scan', 'lane:', '--json', '--db', path]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBe(N);
    expect((JSON.parse(lines[N - 1] as string) as { value: { nonce: number } }).value.nonce).toBe(N - 1);
  }, 30_000);
});
