import { expect, test } from 'bun:test';
import { idFromKey, inflightKey, padId } from './keys.ts';

test('padId: 20 digits, leading zeros trimmed first, longer ids as they are, anything else refused', () => {
  expect(padId('42')).toBe('00000000000000000042');
  expect(padId('0042')).toBe('00000000000000000042');
  expect(padId('0')).toBe('00000000000000000000');
  expect(padId(7n)).toBe('00000000000000000007');
  expect(padId(`00${'9'.repeat(25)}`)).toBe('9'.repeat(25));
  for (const bad of ['', '-1', '1e3', ' 1', '0x10']) expect(() => padId(bad)).toThrow(TypeError);
  expect(idFromKey(inflightKey('0042'))).toBe('42');
});
