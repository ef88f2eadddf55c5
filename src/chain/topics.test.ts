import { describe, expect, test } from 'bun:test';
import { AbiCoder } from 'ethers';
import { addressTopic, uintTopic } from './topics.ts';

describe('topics', () => {
  test('an indexed uint256 is its 32-byte ABI word, for every length of hex', () => {
    const abi = AbiCoder.defaultAbiCoder();
    for (const n of [
      0n,
      1n,
      15n,
      16n,
      255n,
      256n,
      4095n,
      4096n,
      65_535n,
      65_536n,
      1_048_576n,
      2n ** 255n,
      2n ** 256n - 1n,
    ]) {
      expect(uintTopic(n)).toBe(abi.encode(['uint256'], [n]));
      expect(uintTopic(n.toString())).toBe(abi.encode(['uint256'], [n]));
    }
  });

  test('a value outside uint256 is refused', () => {
    expect(() => uintTopic(-1n)).toThrow('not a uint256');
    expect(() => uintTopic(2n ** 256n)).toThrow('not a uint256');
  });

  test('an indexed address is left-padded to 32 bytes, lower case', () => {
    expect(addressTopic('0x70997970C51812dc3A010C7d01b50e0d17dc79C8')).toBe(
      `0x${'0'.repeat(24)}70997970c51812dc3a010c7d01b50e0d17dc79c8`,
    );
  });
});
