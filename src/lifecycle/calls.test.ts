import { describe, expect, test } from 'bun:test';
import { taskQueueIface as tq } from '../chain/abi.ts';
import { activityEvents, completeCall } from './calls.ts';

const Q = '0x00000000000000000000000000000000000000Cc';
const ME = '0x00000000000000000000000000000000000000aa';
const OTHER = '0x00000000000000000000000000000000000000bb';

function log(name: string, args: unknown[], address = Q) {
  const ev = tq.getEvent(name);
  if (!ev) throw new Error(name);
  const { data, topics } = tq.encodeEventLog(ev, args);
  return { address, topics, data };
}

describe('activityEvents', () => {
  test('reads the four events from their topics; other contracts and other events are ignored', () => {
    const logs = [
      log('ActivityClaimed', [1n, ME]),
      log('ActivityClaimed', [2n, OTHER]),
      log('ActivityHeartbeat', [1n, ME]),
      log('ActivityHeartbeat', [2n, OTHER]),
      log('ActivityCompleted', [3n, ME, 'json:{}']),
      log('ActivityCompleted', [4n, OTHER, 'x']),
      log('ActivityFailed', [5n, ME, 'r'.repeat(70)]),
      log('ActivityEnqueued', [6n, `0x${'11'.repeat(32)}`, 0n, 'q', 't', 0]),
      log('ActivityCompleted', [7n, ME, 'x'], OTHER),
    ];
    const ev = activityEvents(logs, Q.toLowerCase(), ME.toUpperCase().replace('0X', '0x'));
    expect([...ev.claimed]).toEqual([
      ['1', ME],
      ['2', OTHER],
    ]);
    expect([...ev.heartbeat]).toEqual(['1']);
    expect([...ev.completed]).toEqual(['3']);
    expect([...ev.failed]).toEqual(['5']);
  });

  test('a log not in the canonical shape goes through ethers: a truncated string is skipped, upper-case hex is read', () => {
    const good = log('ActivityCompleted', [3n, ME, 'json:{}']);
    const truncated = { ...good, data: good.data.slice(0, 130) };
    const upper = {
      ...log('ActivityCompleted', [8n, ME, 'y']),
      topics: log('ActivityCompleted', [8n, ME, 'y']).topics.map((t) => t.toUpperCase().replace('0X', '0x')),
    };
    const ev = activityEvents([truncated, upper], Q, ME);
    expect([...ev.completed]).toEqual(['8']);
  });
});

test('completeCall: the calldata of encodeFunctionData', () => {
  expect(completeCall(Q, '12', 'json:{"a":"b"}').data).toBe(
    tq.encodeFunctionData('completeActivity', ['12', 'json:{"a":"b"}']),
  );
});
