import { describe, expect, test } from 'bun:test';
import { createLogger, REPEAT_WINDOW_MS } from './logger.ts';

describe('logger', () => {
  test('identical warnings print once per window, then with the count held back; different ones always print', () => {
    const lines: string[] = [];
    let t = 1_000_000;
    const log = createLogger('wcp', { json: true, level: 'debug', write: (l) => lines.push(l), now: () => t });
    for (let i = 0; i < 50; i++)
      log.warn('transaction refused', { nonce: 7, retry_in_ms: i, error: 'insufficient funds' });
    log.warn('transaction refused', { nonce: 8, error: 'insufficient funds' });
    log.info('not limited', { a: 1 });
    log.info('not limited', { a: 1 });
    expect(lines.filter((l) => l.includes('"nonce":7'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"nonce":8'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('not limited'))).toHaveLength(2);
    t += REPEAT_WINDOW_MS;
    log.warn('transaction refused', { nonce: 7, retry_in_ms: 99, error: 'insufficient funds' });
    const last = JSON.parse(lines.at(-1) as string);
    expect(last.repeated).toBe(49);
    expect(last.nonce).toBe(7);
  });

  test('a child tag is the parent tag plus the sub-tag, once', () => {
    const lines: string[] = [];
    createLogger('wcp', { json: true, write: (l) => lines.push(l) })
      .child('txmgr')
      .info('x');
    expect(JSON.parse(lines[0] as string).tag).toBe('wcp:txmgr');
  });
});

describe('the ring of recent warnings and errors', () => {
  test('keeps the last 50, redacted as printed, in both formats, and no info or debug line', async () => {
    const { registerSecret } = await import('./redact.ts');
    const { LOG_RING_SIZE, recentProblems } = await import('./log-ring.ts');
    registerSecret('s3cr3t-ring-token-value');
    const pretty = createLogger('ring', { json: false, write: () => {} });
    const json = createLogger('ring', { json: true, write: () => {} });
    pretty.info('an info line', { n: -1 });
    for (let i = 0; i < LOG_RING_SIZE + 10; i++)
      (i % 2 ? json : pretty).warn(`warning ${i}`, { token: 's3cr3t-ring-token-value', long: 'x'.repeat(5_000) });
    pretty.error('the last one', { n: 1 });
    const ring = recentProblems();
    expect(ring).toHaveLength(LOG_RING_SIZE);
    expect(ring.at(-1)).toMatchObject({ level: 'error', tag: 'ring', msg: 'the last one', fields: { n: 1 } });
    expect(ring[0]?.msg).toBe('warning 11');
    expect(ring.some((e) => e.msg === 'an info line')).toBe(false);
    const text = JSON.stringify(ring);
    expect(text).not.toContain('s3cr3t-ring-token-value');
    expect(String(ring[0]?.fields.long).length).toBeLessThan(1_100);
  });
});

test("a worker thread's warnings reach the main thread's ring", async () => {
  const { recentProblems } = await import('./log-ring.ts');
  const { Worker } = await import('node:worker_threads');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const file = join(mkdtempSync(join(tmpdir(), 'wcp-ring-')), 'thread.ts');
  writeFileSync(
    file,
    `import { createLogger } from ${JSON.stringify(join(import.meta.dir, 'logger.ts'))};
     createLogger('thread', { json: true, write: () => {} }).warn('from a thread', { n: 7 });`,
  );
  const w = new Worker(file);
  await new Promise((r) => w.once('exit', r));
  const { until } = await import('./testing/until.ts');
  const hit = await until(
    async () => recentProblems().find((e) => e.msg === 'from a thread'),
    (e) => e !== undefined,
    5_000,
    'the thread warning in the ring',
  );
  expect(hit).toMatchObject({ tag: 'thread', level: 'warn', fields: { n: 7 } });
});
