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
