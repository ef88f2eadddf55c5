import { describe, expect, test } from 'bun:test';
import { AbiCoder } from 'ethers';
import { multicallIface, taskQueueIface, workflowEngineIface } from './abi.ts';
import { decodeResult, encodeCall, eventOf } from './abi-fast.ts';

const coder = AbiCoder.defaultAbiCoder();
const W = '0x00000000000000000000000000000000000000aa';

/** ethers' values, with addresses lower-cased and Results as plain arrays: what the fast path returns. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return Array.from(v, plain);
  if (typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v)) return v.toLowerCase();
  return v;
}

function outcome(f: () => unknown): { ok: unknown } | { error: string } {
  try {
    return { ok: plain(f()) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The fast decoder and ethers agree: the same values, or the same error. */
function agree(iface: typeof taskQueueIface, name: string, data: string) {
  const ethers = outcome(() => iface.decodeFunctionResult(name, data));
  expect(outcome(() => decodeResult(iface, name, data))).toEqual(ethers);
}

const activity = (id: bigint, status: number, text = 'q') => [
  id,
  text,
  7n,
  3n,
  'type-ü',
  'input',
  BigInt(status),
  W,
  1n,
  2n,
  3n,
  4n,
  5n,
  6n,
  true,
  false,
  '',
];

describe('decodeResult', () => {
  test('canonical data: the same values as ethers (getActivity, pollActivity, getWorkflow, arrays, aggregate3)', () => {
    const act = taskQueueIface.encodeFunctionResult('getActivity', [activity(42n, 2, 'x'.repeat(100))]);
    agree(taskQueueIface, 'getActivity', act);
    agree(
      taskQueueIface,
      'pollActivity',
      taskQueueIface.encodeFunctionResult('pollActivity', [true, 9n, 'a', '', 99n]),
    );
    agree(
      taskQueueIface,
      'getWorkerActivities',
      taskQueueIface.encodeFunctionResult('getWorkerActivities', [[1n, 2n]]),
    );
    agree(taskQueueIface, 'getWorkerActivities', taskQueueIface.encodeFunctionResult('getWorkerActivities', [[]]));
    agree(
      workflowEngineIface,
      'getWorkflow',
      workflowEngineIface.encodeFunctionResult('getWorkflow', [[5n, W, 'q', 1n, 3n, 8n, 1n]]),
    );
    const calls = [
      [true, act],
      [false, '0x'],
      [true, '0x1234'],
    ];
    const agg = multicallIface.encodeFunctionResult('aggregate3', [calls]);
    agree(multicallIface, 'aggregate3', agg);
    agree(multicallIface, 'aggregate3', agg.toUpperCase().replace('0X', '0x'));
    expect(decodeResult(multicallIface, 'aggregate3', agg)).toEqual([calls]);
  });

  test('non-canonical or malformed data: ethers decides (values or errors), never a different answer', () => {
    const good = taskQueueIface.encodeFunctionResult('pollActivity', [true, 9n, 'a', 'b', 99n]);
    const word = (i: number) => 2 + i * 64;
    const put = (data: string, i: number, w: string) => data.slice(0, word(i)) + w + data.slice(word(i) + 64);
    const cases = [
      '0x',
      '0x12',
      `${good}00`,
      good.slice(0, -64),
      put(good, 0, `${'0'.repeat(63)}2`), // bool 2: ethers reads true
      put(good, 4, `${'f'.repeat(64)}`), // uint64 with high bits: ethers masks
      put(good, 2, `${'0'.repeat(60)}ffff`), // offset out of bounds
      put(good, 2, `${'f'.repeat(64)}`), // offset beyond a safe integer
      put(good, 5, `${'0'.repeat(62)}ff`), // string length past the end
      `${good.slice(0, -64)}${'ff'.repeat(32)}`, // invalid UTF-8 in the last string
      good.replace(/.$/, 'g'), // not hex
    ];
    for (const data of cases) agree(taskQueueIface, 'pollActivity', data);
    const act = taskQueueIface.encodeFunctionResult('getActivity', [activity(1n, 1)]);
    agree(taskQueueIface, 'getActivity', put(act, 1 + 7, `${'1'.repeat(64)}`)); // address with high bytes
    agree(taskQueueIface, 'getActivity', put(act, 1 + 6, `${'0'.repeat(60)}0100`)); // uint8 status 256: masked
    // A BOM is kept, as ethers keeps it.
    agree(
      taskQueueIface,
      'pollActivity',
      coder.encode(['bool', 'uint256', 'string', 'string', 'uint64'], [true, 1n, '\ufeffx', '', 1n]),
    );
  });

  test('aggregate3 of 100 sub-calls of 1 KB decodes in well under a millisecond each', () => {
    const act = taskQueueIface.encodeFunctionResult('getActivity', [activity(42n, 2, 'y'.repeat(600))]);
    const agg = multicallIface.encodeFunctionResult('aggregate3', [Array.from({ length: 100 }, () => [true, act])]);
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) decodeResult(multicallIface, 'aggregate3', agg);
    expect((performance.now() - t0) / 20).toBeLessThan(20);
  });
});

describe('encodeCall and eventOf', () => {
  const CHECKSUMMED = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
  test('the same calldata as encodeFunctionData, the same topic as ethers', () => {
    const cases: Array<[typeof taskQueueIface, string, unknown[]]> = [
      [taskQueueIface, 'completeActivity', [12n, 'json:{"a":"b"} ü 😀']],
      [taskQueueIface, 'completeActivity', ['12', '']],
      [taskQueueIface, 'failActivity', [3, 'x'.repeat(100)]],
      [taskQueueIface, 'claimActivities', [[1n, '2', 3]]],
      [taskQueueIface, 'claimActivities', [[]]],
      [taskQueueIface, 'getActivity', ['77']],
      [taskQueueIface, 'pollActivity', ['queue', 5]],
      [taskQueueIface, 'getWorkerActivities', [W]],
      [taskQueueIface, 'getWorkerActivities', [CHECKSUMMED]],
      [workflowEngineIface, 'resumeWorkflow', [2n ** 256n - 1n]],
      [
        multicallIface,
        'aggregate3',
        [
          [
            { target: CHECKSUMMED, allowFailure: true, callData: '0x1234' },
            { target: W, allowFailure: false, callData: '0x' },
            [W, true, '0xABcd'],
          ],
        ],
      ],
    ];
    for (const [iface, name, args] of cases)
      expect(encodeCall(iface, name, args)).toBe(iface.encodeFunctionData(name, args));
    expect(eventOf(taskQueueIface, 'ActivityCompleted').topic).toBe(
      taskQueueIface.getEvent('ActivityCompleted')?.topicHash as string,
    );
  });

  test('values ethers reads in another way or refuses: ethers encodes them (same calldata, same errors)', () => {
    const cases: Array<[string, unknown[]]> = [
      ['completeActivity', [-1n, 'x']],
      ['completeActivity', [2n ** 256n, 'x']],
      ['completeActivity', ['0x10', 'x']],
      ['completeActivity', [1n, '\ud800']],
      ['completeActivity', [1n]],
      ['getWorkerActivities', ['0x5FbDB2315678afecb367f032d93F642f64180AA3']],
      ['claimActivities', [[1n, undefined]]],
    ];
    for (const [name, args] of cases)
      expect(outcome(() => encodeCall(taskQueueIface, name, args))).toEqual(
        outcome(() => taskQueueIface.encodeFunctionData(name, args)),
      );
  });
});
