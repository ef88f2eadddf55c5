import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { AbiCoder, getAddress } from 'ethers';
import { taskQueueIface } from './abi.ts';
import {
  BATCH_EXECUTOR,
  batchExecutorIface,
  decodeSimulate,
  describeDelegation,
  designatorFor,
  encodeExecute,
  encodeSimulate,
  MODE_BATCH_DEFAULT,
  MODE_BATCH_TRY,
  parseDesignator,
  tryExecuteFailures,
  ZERO_ADDRESS,
} from './batch-executor.ts';

const TQ = '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0';
const WALLET = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const calls = [
  { to: TQ, data: taskQueueIface.encodeFunctionData('completeActivity', [7n, 'ipfs://r']) },
  { to: TQ, data: taskQueueIface.encodeFunctionData('claimActivity', [8n]) },
];

describe('batch executor encodings (pure)', () => {
  test('execute: batch call type, try exec type, ERC-7579 Execution[] with value 0', () => {
    expect(MODE_BATCH_TRY).toBe(`0x0101${'0'.repeat(60)}`);
    const tx = batchExecutorIface.parseTransaction({ data: encodeExecute(calls) });
    expect(tx?.name).toBe('execute');
    expect(tx?.args[0]).toBe(MODE_BATCH_TRY);
    const [decoded] = AbiCoder.defaultAbiCoder().decode(['tuple(address,uint256,bytes)[]'], tx?.args[1] as string);
    expect((decoded as unknown[][]).map(([to, value, data]) => ({ to, value, data }))).toEqual(
      calls.map((c) => ({ to: c.to, value: 0n, data: c.data })),
    );
    // The simulation carries the same execution data.
    expect(batchExecutorIface.parseTransaction({ data: encodeSimulate(calls) })?.args[0]).toBe(tx?.args[1]);
  });

  test('property: the hand-written encodings and the simulate decoder agree byte for byte with ethers', () => {
    const coder = AbiCoder.defaultAbiCoder();
    const hexBytes = fc.uint8Array({ maxLength: 300 }).map((b) => `0x${Buffer.from(b).toString('hex')}`);
    const address = fc
      .uint8Array({ minLength: 20, maxLength: 20 })
      .map((b) => getAddress(`0x${Buffer.from(b).toString('hex')}`));
    const batch = fc.array(fc.record({ to: address, data: hexBytes }), { maxLength: 12 });
    fc.assert(
      fc.property(batch, (cs) => {
        const exec = coder.encode(['tuple(address,uint256,bytes)[]'], [cs.map((c) => [c.to, 0n, c.data])]);
        expect(encodeExecute(cs)).toBe(batchExecutorIface.encodeFunctionData('execute', [MODE_BATCH_TRY, exec]));
        expect(encodeExecute(cs, MODE_BATCH_DEFAULT)).toBe(
          batchExecutorIface.encodeFunctionData('execute', [MODE_BATCH_DEFAULT, exec]),
        );
        expect(encodeSimulate(cs)).toBe(batchExecutorIface.encodeFunctionData('simulate', [exec]));
      }),
    );
    const answers = fc.array(fc.record({ ok: fc.boolean(), returnData: hexBytes }), { maxLength: 12 });
    fc.assert(
      fc.property(answers, (as) => {
        const encoded = batchExecutorIface.encodeFunctionResult('simulate', [
          as.map((a) => a.ok),
          as.map((a) => a.returnData),
        ]);
        expect(decodeSimulate(encoded)).toEqual(as);
      }),
    );
  });

  test('malformed input is refused, not encoded or misread', () => {
    expect(() => encodeExecute([{ to: TQ, data: '0xabc' }])).toThrow();
    expect(() => encodeExecute([{ to: '0x1234', data: '0x' }])).toThrow();
    expect(() => decodeSimulate('0x')).toThrow();
    const two = batchExecutorIface.encodeFunctionResult('simulate', [
      [true, false],
      ['0x', '0x01'],
    ]);
    expect(() => decodeSimulate(two.slice(0, two.length - 64))).toThrow();
  });

  test('decodeSimulate pairs each call with its outcome', () => {
    const revert = taskQueueIface.encodeErrorResult('UnknownActivity', [8n]);
    const ret = batchExecutorIface.encodeFunctionResult('simulate', [
      [true, false],
      ['0x', revert],
    ]);
    expect(decodeSimulate(ret)).toEqual([
      { ok: true, returnData: '0x' },
      { ok: false, returnData: revert },
    ]);
  });

  test("tryExecuteFailures reads only the wallet's ERC7579TryExecuteFail logs", () => {
    const ev = batchExecutorIface.getEvent('ERC7579TryExecuteFail');
    if (!ev) throw new Error('no event');
    const log = (address: string, i: number, data: string) => ({
      address,
      topics: [ev.topicHash],
      data: AbiCoder.defaultAbiCoder().encode(['uint256', 'bytes'], [i, data]),
    });
    const failures = tryExecuteFailures(
      [log(WALLET.toLowerCase(), 1, '0xdead'), log(TQ, 0, '0xbeef'), { address: WALLET, topics: ['0x01'], data: '0x' }],
      WALLET,
    );
    expect([...failures]).toEqual([[1, '0xdead']]);
  });

  test('the delegation designator: none, a delegate, contract code', () => {
    expect(parseDesignator('0x')).toEqual({ kind: 'none' });
    expect(parseDesignator(designatorFor(BATCH_EXECUTOR.address))).toEqual({
      kind: 'delegated',
      delegate: BATCH_EXECUTOR.address,
    });
    expect(parseDesignator(`0xef0100${WALLET.slice(2).toUpperCase()}`)).toEqual({
      kind: 'delegated',
      delegate: getAddress(WALLET),
    });
    expect(parseDesignator('0x6080604052')).toEqual({ kind: 'code' });
    expect(designatorFor(ZERO_ADDRESS)).toBe('0x');
    expect(describeDelegation({ kind: 'foreign', delegate: WALLET })).toContain(WALLET);
  });
});
