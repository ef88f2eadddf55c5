import { describe, expect, test } from 'bun:test';
import { EXECUTOR_IN_USE, decideOwnership, normalizeIdentity } from './stream-owner.ts';

const A = '0x00000000000000000000000000000000000000aa';
const B = '0x00000000000000000000000000000000000000bb';
const live = (identity: string | undefined) => ({ identity, lastHeardAt: 1_000 });

describe('stream ownership', () => {
  test('with no current stream, anyone takes it', () => {
    expect(decideOwnership(undefined, A, 1_000)).toEqual({ take: true, replaces: 'none' });
    expect(decideOwnership(undefined, undefined, 1_000)).toEqual({ take: true, replaces: 'none' });
  });

  test('the same identity takes over a live stream (wcp restarted, or its old stream is half-open)', () => {
    expect(decideOwnership(live(A), A, 1_001)).toEqual({ take: true, replaces: 'same-identity' });
  });

  test('a different identity, or none, is refused while the current stream is live, naming both', () => {
    const other = decideOwnership(live(A), B, 1_001, 30_000);
    expect(other.take).toBe(false);
    if (other.take) return;
    expect(other.code).toBe(EXECUTOR_IN_USE);
    expect(other.message).toContain(`serves wcp worker ${A}`);
    expect(other.message).toContain(`from wcp worker ${B}`);
    const anon = decideOwnership(live(A), undefined, 1_001, 30_000);
    expect(anon.take === false && anon.message.includes('a client that gave no worker address')).toBe(true);
    // An anonymous owner is not matched by another anonymous client.
    expect(decideOwnership(live(undefined), undefined, 1_001).take).toBe(false);
  });

  test('a current stream silent for staleAfterMs is no longer live: a different identity may take it', () => {
    expect(decideOwnership(live(A), B, 1_000 + 29_999, 30_000).take).toBe(false);
    expect(decideOwnership(live(A), B, 1_000 + 30_000, 30_000)).toEqual({ take: true, replaces: 'stale' });
  });

  test('identities compare trimmed and case-insensitively; empty is none', () => {
    expect(normalizeIdentity(` ${A.toUpperCase().replace('0X', '0x')} `)).toBe(A);
    expect(normalizeIdentity('')).toBeUndefined();
    expect(normalizeIdentity(undefined)).toBeUndefined();
    expect(normalizeIdentity(42)).toBeUndefined();
  });
});
