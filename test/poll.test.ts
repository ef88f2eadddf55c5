/**
 * `pollActivities` against a real anvil: what each queue offers, in enqueue order, bounded by `count`. Its
 * multicall is encoded once and reused (a poller asks the same one every round), so asking another queue or
 * another count in between must never answer with the previous one's calls.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Anvil, startAnvil } from '../scripts/lib/anvil.ts';
import { deployStack, enqueueActivities, type Stack } from '../scripts/lib/deploy.ts';
import { pollActivities } from '../src/chain/poll.ts';
import { createRpcTransport } from '../src/chain/transport.ts';

let anvil: Anvil;
let stack: Stack;

beforeAll(async () => {
  anvil = await startAnvil({});
  stack = await deployStack({ rpcUrl: anvil.url, deployerKey: anvil.accounts[0]!.privateKey });
}, 60_000);

afterAll(async () => {
  stack?.destroy();
  await anvil?.stop();
}, 60_000);

describe('pollActivities', () => {
  test('each queue, each count, asked in turns, gets its own answer', async () => {
    const rpc = createRpcTransport({
      urls: [anvil.url],
      chainId: 31337,
      timeoutMs: 10_000,
      maxLagBlocks: 5,
      endpointBackoffMs: 100,
      endpointBackoffMaxMs: 200,
    });
    const addrs = { taskQueue: stack.addresses.taskQueue, multicall3: stack.addresses.multicall3 };
    const a = await enqueueActivities(stack, { queue: 'poll-a', count: 3, activityType: 'type.a', inputRef: 'json:1' });
    const b = await enqueueActivities(stack, { queue: 'poll-b', count: 2, activityType: 'type.b', inputRef: 'json:2' });
    const ids = async (queue: string, count: number) =>
      (await pollActivities(rpc, addrs, queue, count)).map((p) => `${p.activityId}:${p.activityType}:${p.inputRef}`);
    const all = (xs: bigint[], t: string, i: string) => xs.map((x) => `${x}:${t}:${i}`);
    for (let round = 0; round < 2; round++) {
      expect(await ids('poll-a', 16)).toEqual(all(a, 'type.a', 'json:1'));
      expect(await ids('poll-b', 16)).toEqual(all(b, 'type.b', 'json:2'));
      expect(await ids('poll-a', 2)).toEqual(all(a.slice(0, 2), 'type.a', 'json:1'));
      expect(await ids('poll-b', 1)).toEqual(all(b.slice(0, 1), 'type.b', 'json:2'));
      expect(await ids('no-such-queue', 16)).toEqual([]);
    }
  }, 60_000);
});
