import { describe, expect, test } from 'bun:test';
import * as v from 'valibot';
import { createMirror } from './mirror.ts';

const Rec = v.object({ id: v.string() });
const enc = (id: string) => Buffer.from(JSON.stringify({ id }));
function decode<T>(raw: Buffer, s: v.GenericSchema<unknown, T>): { ok: true; value: T } | { ok: false; error: string } {
  const r = v.safeParse(s, JSON.parse(raw.toString()));
  return r.success ? { ok: true, value: r.output } : { ok: false, error: 'bad' };
}

describe('store mirror', () => {
  test('a record dropped from the mirror takes its decoded value along (no cache of every record ever held)', () => {
    const m = createMirror(['inflight:'], () => []);
    for (let i = 0; i < 100; i++) {
      const key = `inflight:${i}`;
      m.set(key, enc(String(i)));
      const raw = m.raw(key) as Buffer;
      expect(m.decode(key, raw, Rec, decode)).toEqual({ ok: true, value: { id: String(i) } });
    }
    expect(m.decodedCount()).toBe(100);
    for (let i = 0; i < 100; i++) m.set(`inflight:${i}`, null);
    expect(m.decodedCount()).toBe(0);
    expect(m.keys('inflight:')).toEqual([]);
  });

  test('the version of a prefix moves with every change under it, not with changes elsewhere', () => {
    const m = createMirror(['inflight:'], () => []);
    const v0 = m.version('inflight:');
    m.set('inflight:1', enc('1'));
    const v1 = m.version('inflight:');
    expect(v1).not.toBe(v0);
    m.set('done:1', enc('1')); // not mirrored: ignored
    expect(m.version('inflight:')).toBe(v1);
    expect(m.version('done:')).toBeUndefined();
  });
});
