import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThreadProfile } from './thread-profile.ts';

const dirs: string[] = [];
afterEach(() => {
  delete process.env.WCP_DEBUG_CPU_PROF_DIR;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test('WCP_DEBUG_CPU_PROF_DIR unset: nothing is profiled or written', async () => {
  const end = await startThreadProfile('poller');
  await end();
});

test('WCP_DEBUG_CPU_PROF_DIR set: one profile and CPU figure per thread, written when its last task ends', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wcp-prof-'));
  dirs.push(dir);
  process.env.WCP_DEBUG_CPU_PROF_DIR = dir;
  const a = await startThreadProfile('poller');
  const b = await startThreadProfile('reconciler');
  let x = 0;
  for (let i = 0; i < 200_000; i++) x += Math.sqrt(i);
  expect(x).toBeGreaterThan(0);
  await a();
  expect(readdirSync(dir)).toEqual([]);
  await b();
  const files = readdirSync(dir).sort();
  expect(files).toHaveLength(2);
  expect(files[0]).toMatch(/^thread-\d+-poller\+reconciler-\d+\.cpu\.json$/);
  expect(files[1]).toMatch(/\.cpuprofile$/);
  const cpu = JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8'));
  expect(cpu.kinds).toBe('poller+reconciler');
  expect(cpu.userUs + cpu.systemUs).toBeGreaterThan(0);
  expect(Array.isArray(JSON.parse(readFileSync(join(dir, files[1] as string), 'utf8')).nodes)).toBe(true);
});
